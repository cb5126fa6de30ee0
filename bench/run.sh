#!/usr/bin/env bash
# Runs the benchmark scenarios against workerd on 127.0.0.1 (bounded in time; nothing leaves
# the machine). Usage: npm run bench [-- scenario...]   (default: all of them, in this order)
#   http            HTTP baseline: no-op JS Worker, Rust Worker, one D1 round trip   (bench/http.mjs)
#   inventory       reserve+release on one event object vs its /ping (issue "ledger") (bench/inventory.mjs)
#   waitroom-join   joins/s on one event object vs its /ping (issue "waitroom")       (bench/waitroom.mjs)
#   waitroom-depth  join and position cost at queue depth 1,000,000 vs 1,000        (bench/waitroom.mjs)
#   waitroom-ws     one admission tick with many hibernating WebSockets             (bench/waitroom.mjs)
#   waitroom        the three waitroom scenarios
#   waitroom-shards queue shards (issue 15): shard join vs /ping, session poll vs no-op Worker,
#                   admissions/s from 8 shards with 100,000 queued, hub and D1 calls per join
#                   (bench/shards.mjs, SHARDS_* variables; about 6 minutes)
#   door            check-ins/s on one event's door object vs /ping (issue "tickets") (bench/door.mjs)
# Each scenario documents its environment variables at the top of its file. Exits non-zero
# only when a scenario fails (errors, wrong answers), never because a figure is slow.
#   flash-crowd     N buyers through waitroom, checkout and payment + the checker    (bench/flash-crowd.mjs, FC_* variables)
#   profile         where the event object's CPU time goes, for one kind of call       (bench/profile.mjs, PROFILE_* variables)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
. scripts/setup.sh
[ -f build/index.js ] || bash scripts/build.sh

all=(http inventory waitroom-join waitroom-depth waitroom-ws waitroom-shards door)
requested=("$@")
[ ${#requested[@]} -gt 0 ] || requested=("${all[@]}")
scenarios=()
for s in "${requested[@]}"; do
  case "$s" in
    waitroom) scenarios+=(waitroom-join waitroom-depth waitroom-ws) ;;
    http | inventory | waitroom-join | waitroom-depth | waitroom-ws | waitroom-shards | door | flash-crowd | profile) scenarios+=("$s") ;;
    *)
      echo "unknown scenario: $s (known: ${all[*]} waitroom flash-crowd profile)" >&2
      exit 2
      ;;
  esac
done

# node:sqlite (the depth prefill) is stable enough for a harness; keep its warning out of the tables.
node_run() { node --disable-warning=ExperimentalWarning "$@"; }
failed=()
for s in "${scenarios[@]}"; do
  echo "== $s ($(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'))"
  case "$s" in
    waitroom-shards) node_run bench/shards.mjs || failed+=("$s") ;;
    waitroom-*) WAITROOM_PARTS="${s#waitroom-}" node_run bench/waitroom.mjs || failed+=("$s") ;;
    *) node_run "bench/$s.mjs" || failed+=("$s") ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed scenarios: ${failed[*]}" >&2
  exit 1
fi
