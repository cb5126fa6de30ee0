#!/usr/bin/env bash
# A short, bounded fuzzing run of every target in fuzz/ (cargo-fuzz, libFuzzer, nightly Rust).
# Usage: bash scripts/fuzz.sh [target...]   FUZZ_SECONDS=N per target (default 30).
# Without a nightly toolchain, the same target bodies run as a bounded stable smoke test:
#   cargo test --manifest-path fuzz/Cargo.toml --lib
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"
CARGO_FUZZ_VERSION="0.13.2"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "[fuzz] no nightly toolchain: trying 'rustup toolchain install nightly --profile minimal'" >&2
  rustup toolchain install nightly --profile minimal >&2 || {
    echo "[fuzz] nightly unavailable; running the stable smoke run instead" >&2
    exec cargo test --manifest-path fuzz/Cargo.toml --lib
  }
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "[fuzz] installing cargo-fuzz $CARGO_FUZZ_VERSION into .tools (one time)" >&2
  cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --root "$TOOLS" >&2
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$t" ] && cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
  echo "=== fuzz $t for ${SECONDS_PER_TARGET}s" >&2
  (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1)
done
