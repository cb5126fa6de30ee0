#!/usr/bin/env bash
# Runs the benchmark scenarios against workerd on 127.0.0.1 (bounded in time; nothing leaves
# the machine). Usage: npm run bench [-- scenario...]; scenarios: http, flash-crowd
# (default: http; flash-crowd takes FC_* variables, see bench/flash-crowd.mjs).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
[ -f build/index.js ] || bash scripts/build.sh
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(http)
for s in "${scenarios[@]}"; do
  node "bench/$s.mjs"
done
