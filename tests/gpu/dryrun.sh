#!/usr/bin/env bash
# dryrun.sh — the one-shot GPU run (tests/gpu/run.sh) rehearsed without a GPU, as CI can: what
# keeps the first real run from failing on plumbing. ctest runs it as test_gpu_dryrun.
#   1. scripts/bundle.sh packs the programs of this build;
#   2. every program in the bundle starts with only the bundle's libraries and the system's glibc
#      (LD_DEBUG lists every object loaded: each must come from the bundle, or be glibc, or be one
#      the device provides itself: libstdc++/libgcc_s, the driver, cuDNN, cuBLAS);
#   3. no path of this machine's source or build tree is inside the programs;
#   4. run.sh from a copy of the tree at another path, with the GPU hidden: it must exit 0, with
#      "programs" PASS, every GPU step SKIP (never PASS), the summary and the log archive written;
#   5. the deadline: a step that overruns is cut (TIMEOUT) and the next one is NOTRUN, exit 1.
# Usage: tests/gpu/dryrun.sh SOURCE_DIR BUILD_DIR SCRATCH_DIR
set -u
src="$(cd "$1" && pwd)" build="$(cd "$2" && pwd)" tmp="$3/dryrun-$$"
fails=0
check() { # condition text...: one line per check
  local ok=$1
  shift
  if [[ $ok == 0 ]]; then echo "ok   $*"; else echo "FAIL $*"; fails=$((fails + 1)); fi
}
rm -rf "$tmp" && mkdir -p "$tmp/tree"

# 1. the bundle, into a copy of the tree (what travels to the device: the tree and bundle/)
tar -C "$src" --exclude=./.git --exclude=./build --exclude='./build-*' --exclude=./bundle \
  --exclude=./datasets --exclude=./checkpoints -cf - . | tar -C "$tmp/tree" -xf -
"$src/scripts/bundle.sh" --build "$build" --out "$tmp/tree/bundle/ganc-bundle.tar.xz" --level 0 \
  >"$tmp/bundle.log" 2>&1
check $? "scripts/bundle.sh: $(tail -1 "$tmp/bundle.log")"
[[ -f "$tmp/tree/bundle/ganc-bundle.tar.xz" ]] || { echo "FAIL no bundle: stopping"; exit 1; }

# 2. what each program loads, with only the bundle's libraries given
mkdir -p "$tmp/unpacked" && tar -C "$tmp/unpacked" -xJf "$tmp/tree/bundle/ganc-bundle.tar.xz"
B="$tmp/unpacked"
allowed='/(libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so|/ld-linux|lib(cuda|cudnn[a-z_]*|cublas[A-Za-z]*|nvidia[-a-z]*)\.so'
for exe in "$B"/libexec/*; do
  n="$(basename "$exe")"
  arg=--help
  [[ $n == test_ops ]] && arg="" # a cmocka program: it runs its tests (2 s)
  # The loader's report goes to files (LD_DEBUG_OUTPUT: one per process), not to stderr, which
  # the programs' own tests read.
  env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$B/lib" LD_DEBUG=libs LD_DEBUG_OUTPUT="$tmp/ld-$n" \
    "$exe" $arg >"$tmp/ld-$n.out" 2>&1
  rc=$?
  loaded="$(cat "$tmp/ld-$n".* 2>/dev/null | sed -n 's/.*calling init: //p' | sort -u)"
  outside="$(grep -v "^$B/lib/" <<<"$loaded" | grep -v -E "$allowed" | tr '\n' ' ')"
  check $((rc != 0)) "$n starts from the bundle (exit $rc)"
  check $((${#outside} != 0)) "$n loads $(wc -l <<<"$loaded") objects, none from outside the bundle but glibc/libstdc++/CUDA${outside:+: $outside}"
done

# 3. no build-machine path inside the programs (messages, configs, data: all relative)
for p in ganc-prep ganc-train ganc-sample ganc-bench; do
  hits="$(strings -a "$B/libexec/$p" | grep -c -F -e "$src/" -e "$build/")"
  check $((hits != 0)) "$p holds no path of $src or $build ($hits found)"
done

# 4. run.sh from the copy, from another working directory, the GPU hidden
t=$SECONDS
(cd / && CUDA_VISIBLE_DEVICES="" OUT="$tmp/out" GANC_RUN_WORK="$tmp/work" \
  "$tmp/tree/tests/gpu/run.sh" --deadline 300) >"$tmp/run.log" 2>&1
rc=$?
check $rc "run.sh exits 0 without a GPU (exit $rc, $((SECONDS - t))s)"
S="$tmp/out/summary.txt"
[[ -f "$S" ]]
check $? "summary.txt written"
grep -q '^programs *PASS' "$S"
check $? "programs: PASS ($(grep '^programs' "$S" | cut -c1-120))"
for s in device kernels-mma kernels-ops kernels-conv train-parity step-ours step-bf16 step-profile step-tf32 \
  step-nograph step-fp32acts step-nofuse step-norecompute step-nobnstats step-cudnn pytorch layers \
  memcheck-ops memcheck-conv racecheck-ops racecheck-conv; do
  grep -q "^$s *SKIP .*SKIP: ." "$S"
  check $? "$s: SKIP with a reason ($(grep "^$s " "$S" | cut -c1-110))"
done
! grep -v '^programs' "$S" | grep -q ' PASS '
check $? "no GPU step reports PASS"
tar -tzf "$tmp/out/logs.tar.gz" 2>/dev/null | grep -q 'programs.log'
check $? "logs.tar.gz holds the step logs"
grep -q '^\[ *[0-9]*s\] programs: started' "$tmp/run.log"
check $? "progress lines while it runs"

# 5. the deadline cuts a step that overruns, and what follows is not started. A tree without the
# bundle: unpacking it counts against the deadline, and on a loaded machine it could take most of
# these 20 s (the steps never start: their programs need not exist).
mkdir -p "$tmp/tree2" && cp -r "$tmp/tree/tests" "$tmp/tree/configs" "$tmp/tree2/"
t=$SECONDS
(cd / && CUDA_VISIBLE_DEVICES="" OUT="$tmp/out2" GANC_RUN_WORK="$tmp/work2" GANC_RUN_SLEEP=120 \
  "$tmp/tree2/tests/gpu/run.sh" --deadline 20 _sleep programs) >"$tmp/run2.log" 2>&1
rc=$? took=$((SECONDS - t))
check $((rc != 1)) "a run cut by its deadline exits 1 (exit $rc)"
check $((took > 30)) "it ends near its deadline (20 s): ${took}s"
grep -q '^_sleep *TIMEOUT' "$tmp/out2/summary.txt"
check $? "the overrunning step is TIMEOUT ($(grep '^_sleep' "$tmp/out2/summary.txt" | cut -c1-80))"
grep -q '^programs *NOTRUN' "$tmp/out2/summary.txt"
check $? "the step after it is NOTRUN ($(grep '^programs' "$tmp/out2/summary.txt" | cut -c1-80))"

if ((fails)); then
  echo "--- run.sh output:" && cat "$tmp/run.log" && echo "--- deadline run:" && cat "$tmp/run2.log"
  echo "$fails checks failed (scratch kept in $tmp)"
  exit 1
fi
rm -rf "$tmp"
echo "all checks passed"
