#!/usr/bin/env bash
# Builds the Worker (wasm + JS shim into build/) and stages the Swagger UI bundle into public/.
# wrangler runs this as [build] on every `wrangler dev` and `wrangler deploy` (also --dry-run),
# so it skips worker-build (about 1.5 min, most of it wasm-opt) when build/ was made from the
# same inputs: the Rust sources, Cargo files, toolchain and these scripts. TB_FORCE_BUILD=1
# rebuilds anyway.
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
# The live dashboard's chart library (uPlot), served from the Worker's own assets as well.
chart=public/vendor/uplot
mkdir -p "$chart"
for f in uPlot.esm.js uPlot.min.css; do
  cmp -s "node_modules/uplot/dist/$f" "$chart/$f" || cp "node_modules/uplot/dist/$f" "$chart/$f"
done

# What the build output depends on. Files are listed from disk (not git), so uncommitted and
# new files count too.
fingerprint() {
  {
    rustc -V
    "$WORKER_BUILD_BIN" --version
    "$WASM_BINDGEN_BIN" --version
    find src -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum Cargo.toml Cargo.lock scripts/build.sh scripts/setup.sh
    echo "dev=${TB_DEV_BUILD:-0}"
  } | sha256sum | cut -d' ' -f1
}

stamp=build/.inputs.sha256
want=$(fingerprint)
if [ "${TB_FORCE_BUILD:-0}" != 1 ] && [ -f build/index.js ] && [ -f build/index_bg.wasm ] \
  && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[build] build/ is up to date with the sources; not rebuilding (TB_FORCE_BUILD=1 forces)" >&2
  exit 0
fi
rm -f "$stamp"
# TB_DEV_BUILD=1: an unoptimised build (no LTO, no wasm-opt) for quick local iterations on the
# runtime tests; the test command, CI and deploys always build --release.
if [ "${TB_DEV_BUILD:-0}" = 1 ]; then
  "$WORKER_BUILD_BIN" --dev >&2
else
  "$WORKER_BUILD_BIN" --release >&2
fi
echo "$want" > "$stamp"
