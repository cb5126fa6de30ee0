#!/usr/bin/env bash
# The whole test command (README, CI): lint, host tests, build, runtime tests, browser tests;
# prints a summary.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh || exit 1

declare -a names=() results=()
step() { # name command...
  local name=$1; shift
  printf '\n=== %s\n' "$name"
  if "$@"; then names+=("$name"); results+=("ok"); else names+=("$name"); results+=("FAILED"); fi
}

step "cargo fmt --check" cargo fmt --all -- --check
step "clippy (host, all targets)" cargo clippy --all-targets -- -D warnings
step "clippy (wasm32 Worker)" cargo clippy --target wasm32-unknown-unknown -- -D warnings
step "host tests (cargo test)" cargo test
step "build Worker" bash scripts/build.sh
step "bundle: deploy --dry-run, size" bash scripts/check-bundle.sh
step "runtime tests (vitest on workerd)" npx vitest run
step "browser tests (Chromium, node --test)" node --test --test-timeout=90000 'tests/browser/*.test.mjs'
step "abuse: schemathesis (no 5xx, schema)" node scripts/abuse.mjs

printf '\n=== summary\n'
failed=0
for i in "${!names[@]}"; do
  printf '%-40s %s\n' "${names[$i]}" "${results[$i]}"
  [ "${results[$i]}" = ok ] || failed=$((failed + 1))
done
passed=$(( ${#names[@]} - failed ))
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
