#!/usr/bin/env bash
# The whole test command (README, CI): lint, host tests, build, runtime tests, browser tests;
# prints a summary.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh || exit 1

# Each step's output is also kept, so that a failed step's own report can be printed again
# after the summary: CI shows the end of the log, and the failure must be in it.
LOGS="$ROOT/test-results/steps"
mkdir -p "$LOGS"
declare -a names=() results=() logs=()
step() { # name command...
  local name=$1; shift
  local log="$LOGS/$(( ${#names[@]} + 1 )).log"
  printf '\n=== %s\n' "$name"
  "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  names+=("$name"); logs+=("$log")
  if [ "$status" -eq 0 ]; then results+=("ok"); else results+=("FAILED"); fi
}

# What a failed step said about its failures: vitest's "Failed Tests" part when there is one,
# node --test's failing subtests, else the step's last lines.
failure_report() { # log
  local log=$1
  if grep -q 'Failed Tests' "$log"; then
    sed -n '/Failed Tests/,$p' "$log" | head -n 250
  elif grep -q '^not ok' "$log"; then
    grep -n -A 30 'not ok' "$log" | head -n 250
  else
    tail -n 80 "$log"
  fi
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

failed=0
for i in "${!names[@]}"; do
  if [ "${results[$i]}" != ok ]; then
    printf '\n=== what failed in: %s\n' "${names[$i]}"
    failure_report "${logs[$i]}"
  fi
done

printf '\n=== summary\n'
for i in "${!names[@]}"; do
  printf '%-40s %s\n' "${names[$i]}" "${results[$i]}"
  [ "${results[$i]}" = ok ] || failed=$((failed + 1))
done
passed=$(( ${#names[@]} - failed ))
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
