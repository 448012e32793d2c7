#!/usr/bin/env bash
# make bench-compare BEFORE=<git rev>: the health, runbooks and incidents
# parts of make bench for two builds on the same machine in one run, side by
# side: the release build of BEFORE (built in a temporary git worktree, with
# the same CARGO_TARGET_DIR so dependencies are shared) and the release build
# of the working tree ("after"). Each part runs for "before" then "after"
# before the next part starts, so both see the same machine state.
#
# Parts (each script's own environment variables still apply):
#   health     bench/health.sh, BENCH_PARTS "A B" (10,000 checks; the board
#              over 5,000 services)
#   runbooks   bench/runbooks.sh, BENCH_PARTS "Q" (1,000 queued runs: burst
#              and paced)
#   incidents  bench/incidents.sh (a container killed → first notification),
#              BENCH_ROUNDS 10 unless set
# COMPARE_PARTS (default "health runbooks incidents") chooses among them.
# COMPARE_ROUNDS (default 1): with 2, each part runs before, after, before,
# after, so the spread between a side's two rounds shows the machine's noise.
# Output: each part's Markdown table, labelled before/after, on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
before=${BEFORE:?set BEFORE to a git revision (e.g. BEFORE=HEAD~10)}
parts=${COMPARE_PARTS:-health runbooks incidents}
target=${CARGO_TARGET_DIR:-$HOME/.cache/opsdeck/target}
export CARGO_TARGET_DIR=$target

rev=$(git rev-parse --short "$before")
store="$target/compare/$rev"
if [ ! -x "$store/opsdeck" ] || [ ! -x "$store/bench-target" ]; then
  tree=$(mktemp -d /tmp/opsdeck-compare.XXXXXX)
  trap 'git worktree remove --force "$tree" 2>/dev/null || true' EXIT
  git worktree add --quiet --detach "$tree" "$rev"
  echo "==> building $rev (before) in $tree"
  (cd "$tree" && SQLX_OFFLINE=true cargo build --release -p opsdeck --bin opsdeck \
     && SQLX_OFFLINE=true cargo build --release -p opsdeck-e2e --bin bench-target)
  mkdir -p "$store"
  cp "$target/release/opsdeck" "$target/release/bench-target" "$store/"
fi
echo "==> building the working tree (after)"
cargo build --release -p opsdeck --bin opsdeck
cargo build --release -p opsdeck-e2e --bin bench-target
after_bin="$target/release/opsdeck"
after_target="$target/release/bench-target"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -r); before = $rev, after = $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
rounds=${COMPARE_ROUNDS:-1}
sides=""
for _ in $(seq "$rounds"); do sides="$sides before after"; done
for part in $parts; do
  for side in $sides; do
    if [ "$side" = before ]; then bin="$store/opsdeck"; tb="$store/bench-target"; else bin=$after_bin; tb=$after_target; fi
    echo
    echo "### $part — $side ($bin)"
    case $part in
      health) OPSDECK_BIN=$bin BENCH_TARGET_BIN=$tb BENCH_PARTS=${BENCH_HEALTH_PARTS:-A B} bash bench/health.sh ;;
      runbooks) OPSDECK_BIN=$bin BENCH_PARTS=${BENCH_RUNBOOKS_PARTS:-Q} bash bench/runbooks.sh ;;
      incidents) OPSDECK_BIN=$bin BENCH_ROUNDS=${BENCH_ROUNDS:-10} bash bench/incidents.sh ;;
      *) echo "unknown part $part" >&2; exit 2 ;;
    esac
  done
done
