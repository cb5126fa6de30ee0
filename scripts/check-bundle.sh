#!/usr/bin/env bash
# Validates what `wrangler deploy` would upload, without network and without an account:
# `wrangler deploy --dry-run` for staging and production (config, bindings, bundling), then
# the Worker's size against the Workers limits, with a margin.
#
# `[build]` runs on deploy, dry runs included; scripts/build.sh skips worker-build when build/
# is current, so this reuses the build of the test command instead of rebuilding. Bundling is
# kept (no --no-bundle): the dry run should bundle exactly as a deploy does.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

# Nothing may reach the network: no telemetry, no error reports, no update check (the banner
# does one), no account.
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false WRANGLER_HIDE_BANNER=true
unset CLOUDFLARE_API_TOKEN CLOUDFLARE_API_KEY CLOUDFLARE_ACCOUNT_ID CLOUDFLARE_EMAIL

# Limits: wrangler 4.164 checks 64 MiB uncompressed; accounts still on the Workers Free plan's
# compressed limit get 3 MiB (gzip). Fail well before either.
RAW_LIMIT=$((64 * 1024 * 1024)); RAW_BUDGET_PCT=${TB_RAW_BUDGET_PCT:-70}
GZIP_LIMIT=$((3 * 1024 * 1024)); GZIP_BUDGET_PCT=${TB_GZIP_BUDGET_PCT:-75}

# Where the machine allows an unprivileged network namespace, wrangler runs in one with no
# network at all, so "offline" is enforced rather than assumed.
offline() {
  if unshare -rn true 2>/dev/null; then unshare -rn "$@"; else "$@"; fi
}
if unshare -rn true 2>/dev/null; then
  echo "(wrangler runs in a network namespace without network)"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0

for env in staging production; do
  printf -- '--- wrangler deploy --dry-run --env %s\n' "$env"
  log="$out/$env.log"
  if ! offline node_modules/.bin/wrangler deploy --dry-run --env "$env" --outdir "$out/$env" >"$log" 2>&1; then
    cat "$log"
    echo "FAIL: dry run for $env" >&2
    status=1
    continue
  fi
  grep -E 'Total Upload|--dry-run' "$log" || true
  # The environment resolved as configured: its own vars, database and queues.
  for expected in "ENVIRONMENT (\"$env\")" "ticketbottle-$env" "tb-payment-events-$env" "tb-domain-events-$env" "EventHub"; do
    if ! grep -qF "$expected" "$log"; then
      cat "$log"
      echo "FAIL: the $env dry run does not mention $expected" >&2
      status=1
    fi
  done
  # The dry run bundled the wasm of build/ as is.
  wasm=$(find "$out/$env" -maxdepth 1 -name '*.wasm' | head -n1)
  if [ -z "$wasm" ] || ! cmp -s "$wasm" build/index_bg.wasm; then
    echo "FAIL: the $env bundle's wasm is not build/index_bg.wasm" >&2
    status=1
    continue
  fi
  # Sizes as wrangler computes them: every uploaded module (JS and wasm, not source maps).
  node - "$out/$env" "$RAW_LIMIT" "$RAW_BUDGET_PCT" "$GZIP_LIMIT" "$GZIP_BUDGET_PCT" <<'NODE' || status=1
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");
const [dir, rawLimit, rawPct, gzipLimit, gzipPct] = process.argv.slice(2);
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".js") || f.endsWith(".wasm"));
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const sizes = files.map((f) => {
  const data = fs.readFileSync(path.join(dir, f));
  return { f, raw: data.length, gzip: zlib.gzipSync(data).length, data };
});
for (const s of sizes) console.log(`  ${s.f.replace(/^[0-9a-f]{40}-/, "")}: ${kib(s.raw)} raw, ${kib(s.gzip)} gzip`);
const all = Buffer.concat(sizes.map((s) => s.data));
const raw = all.length;
const gzip = zlib.gzipSync(all).length;
const check = (what, size, limit, pct) => {
  const used = (100 * size) / limit;
  const ok = used <= Number(pct);
  console.log(`  ${what}: ${kib(size)} of ${kib(Number(limit))} = ${used.toFixed(1)} % (budget ${pct} %) ${ok ? "ok" : "OVER BUDGET"}`);
  return ok;
};
console.log(`  total: ${kib(raw)} raw, ${kib(gzip)} gzip`);
const ok = [check("uncompressed", raw, rawLimit, rawPct), check("gzip", gzip, gzipLimit, gzipPct)].every(Boolean);
process.exit(ok ? 0 : 1);
NODE
done

[ "$status" -eq 0 ] && echo "bundle check: ok" || echo "bundle check: FAILED" >&2
exit "$status"
