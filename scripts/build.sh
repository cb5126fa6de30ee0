#!/usr/bin/env bash
# Builds the Worker (wasm + JS shim into build/) and stages the Swagger UI bundle into public/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

vendor=public/docs/vendor
mkdir -p "$vendor"
for f in swagger-ui.css swagger-ui-bundle.js; do
  cmp -s "node_modules/swagger-ui-dist/$f" "$vendor/$f" || cp "node_modules/swagger-ui-dist/$f" "$vendor/$f"
done

"$WORKER_BUILD_BIN" --release >&2
