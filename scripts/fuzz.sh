#!/usr/bin/env bash
# fuzz.sh — long libFuzzer runs of the harnesses in tests/fuzz (hours), for what ./test.sh's
# few seconds per harness cannot reach. Corpora grow outside git, from one run to the next;
# every crash, leak, timeout and out-of-memory is saved and the run goes on.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS ...]
#     SECONDS   per harness (default 3600); harnesses run one after another
#     HARNESS   image idx shard ckpt config (default: all five)
#
# Environment:
#   GANC_FUZZ_BUILD  the clang build folder (default build-fuzz; configured here when missing:
#                    CC=clang, -DGANC_CUDA=OFF -DGANC_FUZZ=ON)
#   GANC_FUZZ_WORK   corpora, crashes and logs (default $GANC_FUZZ_BUILD/fuzz-long):
#                      corpus/<harness>/   inputs that reached new code (seeds for the next run)
#                      crashes/<harness>/  crash-*, leak-*, timeout-*, oom-* inputs
#                      logs/<harness>-<time>.log
#   GANC_FUZZ_JOBS   worker processes per harness (libFuzzer -fork; default 1)
#
# A saved input reproduces with: $GANC_FUZZ_BUILD/tests/fuzz/fuzz_<harness> FILE
# (ASan/UBSan/LSan options and tests/lsan.supp are compiled in: tests/sanitizer_options.c).
# Exit status: 0 when no new crash file appeared, 1 when one did, 2 on bad usage.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
all=(image idx shard ckpt config)
seconds=${1:-3600}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS ...]   (harnesses: ${all[*]})" >&2
  exit 2
fi
shift $(($# > 0 ? 1 : 0))
harnesses=("$@")
[[ ${#harnesses[@]} -eq 0 ]] && harnesses=("${all[@]}")
for h in "${harnesses[@]}"; do
  if [[ ! " ${all[*]} " == *" $h "* ]]; then
    echo "error: no harness '$h'" >&2
    echo "---> HINT: choose among: ${all[*]}" >&2
    exit 2
  fi
done
build="${GANC_FUZZ_BUILD:-$root/build-fuzz}"
work="${GANC_FUZZ_WORK:-$build/fuzz-long}"
jobs="${GANC_FUZZ_JOBS:-1}"

"$root/scripts/deps.sh" --test
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGANC_CUDA=OFF -DGANC_MPI=OFF -DGANC_FUZZ=ON \
    >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target ganc_fuzzers >/dev/null
# Shard and checkpoint seeds come from the writers just built (tests/fuzz/mkseeds.c).
"$build/tests/fuzz/ganc-fuzz-mkseeds" "$work/seeds" shard ckpt
mkdir -p "$work/logs"

new_crashes=0
summary=()
for h in "${harnesses[@]}"; do
  corpus="$work/corpus/$h" crashes="$work/crashes/$h"
  log="$work/logs/$h-$(date -u +%Y%m%dT%H%M%SZ).log"
  mkdir -p "$corpus" "$crashes"
  before=$(find "$crashes" -type f | wc -l)
  marker="$work/logs/.start-$h"
  touch "$marker"
  seeds=()
  for d in "$root/tests/fuzz/seeds/$h" "$work/seeds/$h"; do [[ -d "$d" ]] && seeds+=("$d"); done
  echo "fuzz_$h: ${seconds}s, $jobs worker(s); log $log"
  # -fork: workers run in child processes, so a crash, leak, timeout or out-of-memory is saved and
  # the run continues (-ignore_*); new inputs are merged into the first folder, the corpus.
  set +e
  "$build/tests/fuzz/fuzz_$h" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$crashes/" \
    "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  set -e
  after=$(find "$crashes" -type f | wc -l)
  # The last status line of fork mode: "#<executions>: cov: .. ft: .. corp: .. exec/s: .. ...".
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
  line="fuzz_$h: ${execs:-?} executions in ${seconds}s, corpus $(find "$corpus" -type f | wc -l) files, $((after - before)) new crash file(s) (libFuzzer exit $rc)"
  summary+=("$line")
  echo "$line"
  if ((after > before)); then
    new_crashes=1
    # By kind (libFuzzer's file prefixes), with a few examples each: one defect often gives many
    # inputs (every new way to reach it is saved), so reproduce a few before reading them all.
    for kind in crash leak timeout oom slow-unit; do
      n=$(find "$crashes" -type f -name "$kind-*" -newer "$marker" | wc -l)
      ((n > 0)) || continue
      echo "  $n new $kind-* file(s), e.g.:"
      find "$crashes" -type f -name "$kind-*" -newer "$marker" | head -3 | sed 's/^/    /'
    done
  fi
  rm -f "$marker"
done
echo "== scripts/fuzz.sh summary (work folder $work) =="
printf '%s\n' "${summary[@]}"
exit "$new_crashes"
