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
# The door's QR decoder (jsQR) for browsers without BarcodeDetector; the page loads it only there.
qr=public/vendor/jsqr
mkdir -p "$qr"
cmp -s node_modules/jsqr/dist/jsQR.js "$qr/jsQR.js" || cp node_modules/jsqr/dist/jsQR.js "$qr/jsQR.js"

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
# TB_DEV_BUILD=1: a quick build for local iterations on the runtime tests: the release
# profile without LTO, with parallel codegen and without wasm-opt (a pass-through stands in).
# Not `worker-build --dev`: its wasm-bindgen debug checks reject worker's own setTimeout calls.
# The test command, CI and deploys always build the full --release.
if [ "${TB_DEV_BUILD:-0}" = 1 ]; then
  passthrough="$ROOT/target/wasm-opt-passthrough.sh"
  mkdir -p "$ROOT/target"
  printf '#!/bin/sh\n# args: INPUT -o OUTPUT [flags]\ncp "$1" "$3"\n' > "$passthrough"
  chmod +x "$passthrough"
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=64 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_INCREMENTAL=true \
    WASM_OPT_BIN="$passthrough" "$WORKER_BUILD_BIN" --release >&2
else
  "$WORKER_BUILD_BIN" --release >&2
fi
echo "$want" > "$stamp"
