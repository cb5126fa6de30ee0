#!/usr/bin/env bash
# `npm run dev`: setup, migrate the local D1, start `wrangler dev` on 127.0.0.1:8787 (it builds
# the Worker), then load the demo data through the API (idempotent) and print how to log in.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh

PORT="${PORT:-8787}"
npx wrangler d1 migrations apply DB --local >&2

node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" &
wrangler_pid=$!
trap 'kill "$wrangler_pid" 2>/dev/null; wait "$wrangler_pid" 2>/dev/null' EXIT INT TERM

# The first start compiles the Worker (minutes on a cold machine).
for _ in $(seq 1 600); do
  if curl -fsS "http://127.0.0.1:$PORT/api/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$wrangler_pid" 2>/dev/null; then echo "wrangler dev exited" >&2; exit 1; fi
  sleep 1
done
node scripts/seed.mjs "http://127.0.0.1:$PORT"
wait "$wrangler_pid"
