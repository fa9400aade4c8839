#!/usr/bin/env bash
# test.sh — installs what is missing, builds, and runs every test (ctest) three ways; its last
# lines are ctest's summaries of the three runs, and it fails when any run fails.
#   1. build/       the normal build: every test; GPU tests report "skipped" without a GPU.
#   2. build-asan/  the CPU tests again under AddressSanitizer + UndefinedBehaviorSanitizer with
#                   leak checking (gcc, -DGANC_SANITIZE=ON; CMakeLists.txt and
#                   tests/sanitizer_options.c say how), with the programs the tests run
#                   (ganc-prep, ganc-train, ganc-sample) sanitized too.
#   3. build-fuzz/  the libFuzzer harnesses (clang, -DGANC_FUZZ=ON; tests/fuzz), each running a
#                   fixed number of inputs mutated from its seeds, about 5 s (ctest label
#                   "fuzz"); scripts/fuzz.sh runs them for hours.
# GANC_TEST_SANITIZE=0 ./test.sh runs the first only (a quick local check; CI runs all three).
#
# Why two sanitized builds and not one: clang compiles OpenMP against its own runtime (libomp),
# while Debian's OpenMP OpenBLAS brings GCC's (libgomp); with both in one process the CPU tests
# crawl (test_ops: over 600 s instead of 13 s under ASan). gcc's ASan keeps one runtime; the
# fuzzers' clang build only needs the library and five small programs (~15 s on 2 cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# Seconds each phase took, for the summary (the sanitized runs must keep ./test.sh well under
# 15 minutes on 2 cores).
times=()
phase_start=$SECONDS
phase_done() { times+=("$1 $((SECONDS - phase_start)) s"); phase_start=$SECONDS; }
scripts/deps.sh --test
# TensorBoard and ONNX Runtime for test_tensorboard and test_onnx, in a virtual environment cached
# under ~/.cache/ganc (from PyPI; without a network those tests report SKIP with the reason).
scripts/test-venv.sh >/dev/null || echo "warning: no test environment: test_tensorboard and test_onnx will be skipped"
phase_done deps
scripts/build.sh
phase_done build

sanitize=${GANC_TEST_SANITIZE:-1}
if [[ "$sanitize" != 0 ]]; then
  # -DCMAKE_BUILD_TYPE=Release: -O2 -g, as shipped, so the sanitizers check the code users run and
  # the sanitized tests take 2-4x their normal time, not more.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DGANC_CUDA=OFF -DGANC_MPI=OFF -DGANC_SANITIZE=ON \
    >/dev/null
  cmake --build build-asan -j "$(nproc)"
  phase_done build-asan
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DGANC_CUDA=OFF -DGANC_MPI=OFF -DGANC_FUZZ=ON \
    >/dev/null
  cmake --build build-fuzz -j "$(nproc)" --target ganc_fuzzers
  phase_done build-fuzz
fi

# Runs ctest in folder $1 (described as $2) with the arguments after them; keeps its output in
# $1/ctest.log and its summary line (and the names of failed tests) for the end.
failed=0
summaries=()
run_ctest() {
  local dir=$1 what=$2 rc
  shift 2
  echo "== ctest in $dir: $what"
  set +e
  (cd "$dir" && ctest --output-on-failure -j "$(nproc)" "$@") 2>&1 | tee "$dir/ctest.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [[ $rc -ne 0 ]]; then failed=1; fi
  local line
  line=$(grep -E 'tests passed|No tests were found' "$dir/ctest.log" | tail -1 || true)
  summaries+=("$dir ($what): ${line:-ctest exit $rc}")
  phase_done "ctest-$dir"
  while IFS= read -r line; do
    [[ -n "$line" ]] && summaries+=("  failed:$line")
  done < <(sed -n '/The following tests FAILED:/,/^Errors while running CTest/p' \
    "$dir/ctest.log" | grep -E '^\s+[0-9]+ - ' || true)
}

run_ctest build "every test"
if [[ "$sanitize" != 0 ]]; then
  # The sanitized subset: every CPU test but test_learning. test_learning is 80 s of training
  # (over 3 min sanitized) to judge image quality; test_train runs the same training loop, with
  # resume, signals and checkpoints, through the sanitized ganc-train in under 1.5 min. The
  # emulator and GPU tests (*_emu, label gpu) are not built here (-DGANC_CUDA=OFF); test_h5py*
  # run the sanitized programs under Python and skip without h5py. A new test joins this run
  # unless it is named here. test_damage takes every 8th of its damage offsets here
  # (GANC_DAMAGE_QUICK: every region and every superblock byte still, ~30 s instead of ~220 s of
  # sanitized program launches); build/ runs the full set.
  GANC_DAMAGE_QUICK=1 run_ctest build-asan "ASan+UBSan+LSan, CPU tests but test_learning" \
    -E '^test_learning$'
  run_ctest build-fuzz "libFuzzer, a fixed number of inputs per harness" -L fuzz
fi

echo "== ./test.sh summary (seconds: ${times[*]}; total $SECONDS s)"
printf '%s\n' "${summaries[@]}"
exit "$failed"
