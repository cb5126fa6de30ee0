#!/usr/bin/env bash
# `npm run dev`: setup, migrate the local D1, start the local stand-ins for PayOS, VNPay and
# ZaloPay (scripts/dev-providers.mjs, on the addresses .dev.vars names) and `wrangler dev` on
# 127.0.0.1:8787 (it builds the Worker), fire the Worker's cron every minute as production
# does, then load the demo data through the API (idempotent) and print where to go.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh

PORT="${PORT:-8787}"
BASE="http://127.0.0.1:$PORT"
npx wrangler d1 migrations apply DB --local >&2

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null' EXIT INT TERM

# The payment providers' stand-ins: without them choosing PayOS or ZaloPay ends in 502.
node scripts/dev-providers.mjs "$BASE" &
pids+=($!)

# --test-scheduled: wrangler dev never runs the cron trigger by itself, but serves
# /__scheduled, which the loop below calls every minute (the outbox relay and the sweeps).
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --test-scheduled &
wrangler_pid=$!
pids+=("$wrangler_pid")

# The first start compiles the Worker (minutes on a cold machine).
for _ in $(seq 1 600); do
  if curl -fsS "$BASE/api/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$wrangler_pid" 2>/dev/null; then echo "wrangler dev exited" >&2; exit 1; fi
  sleep 1
done

CRON="$(printf '%s' '* * * * *' | sed 's/ /+/g')"
( while sleep 60; do
    curl -fsS -o /dev/null "$BASE/__scheduled?cron=$CRON" || echo "[dev] the cron tick failed" >&2
  done ) &
pids+=($!)

# A seed that fails (say the demo admin's password was changed in the local database) must not
# take the server down with it.
node scripts/seed.mjs "$BASE" || echo "[dev] warning: loading the demo data failed (see above); the server keeps running on $BASE" >&2
wait "$wrangler_pid"
