#!/usr/bin/env bash
# run.sh — one short, repeatable libFuzzer run, as ctest runs each harness
# (tests/fuzz/CMakeLists.txt):
#   run.sh FUZZER RUNS MAX_SECONDS WORK SEED_DIR...
# Executes RUNS inputs mutated from the seeds (the folders that exist), with a fixed -seed and an
# empty corpus folder WORK/corpus, so the same build runs the same inputs on every machine and CI
# cannot turn red by luck or by speed; MAX_SECONDS only stops a run on a very slow machine.
# Finding more is scripts/fuzz.sh's job (hours, growing corpora).
# A crash, leak, timeout or out-of-memory fails the test; the input is saved as
# WORK/crashes/<fuzzer>-crash-<sha1> (or -leak-, -timeout-, -oom-) and the line to reproduce it
# is printed. ASan/UBSan/LSan options come from tests/sanitizer_options.c.
set -euo pipefail
bin=$1 runs=$2 seconds=$3 work=$4
shift 4
name=$(basename "$bin")
rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/crashes"
dirs=("$work/corpus")
for d in "$@"; do [[ -d "$d" ]] && dirs+=("$d"); done
# -timeout: seconds for one input; -rss_limit_mb: libFuzzer's memory limit (also the largest
# single allocation it allows). The largest input it makes is that of the largest seed.
set +e
"$bin" -seed=1 -runs="$runs" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/crashes/$name-" "${dirs[@]}" 2>&1 |
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' # per-input progress: thousands of lines
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ne 0 ]]; then
  echo "FAILED: $name found a problem (exit $rc); the input is the newest $name-* file in"
  echo "  $work/crashes"
  echo "Reproduce: $bin $work/crashes/$name-<...>"
fi
exit "$rc"
