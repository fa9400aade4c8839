#!/usr/bin/env bash
# run.sh — every GPU test and benchmark of ganc in one call, for a machine with a GPU (the device
# machine: carry "bundle" made by scripts/bundle.sh; or any machine with a CUDA build in build/).
# Runs: the CPU op tests (sanity of the bundle), the GPU kernel tests against the CPU twins and
# cuDNN, 20 training steps GPU vs CPU with cross-device resumes and the sampler on both,
# ganc-bench --layers (ours vs cuDNN vs cuBLAS) and --step (ganc's kernels and cuDNN), the PyTorch
# DCGAN baseline, then compute-sanitizer memcheck and racecheck on the kernel tests (on their
# --quick / --match subsets: the sanitizers are 10-100x slower). A short table comes last.
#
# Every step has its own time limit, so one hang costs only its step. Logs are kept in $WORK and,
# after every step, packed into $OUT/logs.tar.gz next to $OUT/summary.txt (the table so far):
# two files, so they come back from the device tool (at most 8 files) even if the call is cut off.
# Usage: tests/gpu/run.sh [STEP...]   (no STEP: all; else only the steps named, e.g. test_gpu_conv)
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
OUT="${OUT:-/tmp/ganc-gpu-out}"
WORK=/tmp/ganc-gpu
rm -rf "$WORK" && mkdir -p "$OUT" "$WORK"

if [[ -f bundle/ganc-bundle.tar.xz ]]; then
  B=/tmp/ganc-bundle
  rm -rf "$B" && mkdir -p "$B" && tar -C "$B" -xJf bundle/ganc-bundle.tar.xz
  BIN="$B/bin" TBIN="$B/bin"
  export LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export GANC_FMNIST_DIR="$B/data"
else
  BIN="$root/build" TBIN="$root/build/tests"
fi
# cuDNN and cuBLAS from the Python packages (PyTorch's), when the system has none.
for mod in nvidia.cudnn nvidia.cublas nvidia.cu13; do
  d=$(python3 -c "import $mod, os; print(os.path.dirname($mod.__file__ or list($mod.__path__)[0]))" 2>/dev/null) || continue
  for lib in $(find "$d" -name 'libcudnn.so.9' -o -name 'libcublas.so.1*' 2>/dev/null); do
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$lib")"
  done
done
export GANC_BIN_DIR="$BIN" GANC_SOURCE_DIR="$root" GANC_TEST_TMP="$WORK/tmp"
mkdir -p "$GANC_TEST_TMP"
nvidia-smi -L 2>/dev/null | head -2 | tee "$WORK/device.txt"

only=("$@")
rows=()
summary() {
  {
    printf '%-16s %-11s %6s  %s\n' "step" "result" "time" "last line"
    for r in "${rows[@]}"; do echo "$r"; done
  } >"$OUT/summary.txt"
  tar -C "$WORK" -czf "$OUT/logs.tar.gz.tmp" --exclude=tmp . 2>/dev/null &&
    mv "$OUT/logs.tar.gz.tmp" "$OUT/logs.tar.gz"
}
step() { # name, seconds, command...: runs it, keeps its log, records PASS/SKIP/FAIL and its last line
  local name="$1" limit="$2"
  shift 2
  if ((${#only[@]})) && [[ ! " ${only[*]} " == *" $name "* ]]; then return; fi
  local t0=$SECONDS rc st
  timeout -k 10 "$limit" "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  case $rc in 0) st=PASS ;; 77) st=SKIP ;; 124 | 137) st="TIMEOUT" ;; *) st="FAIL($rc)" ;; esac
  rows+=("$(printf '%-16s %-11s %5ss  %s' "$name" "$st" $((SECONDS - t0)) "$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1 | cut -c1-100)")")
  summary
}

SAN="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
CONV_SUBSET=(--match odd --match random --match split-K --match fmnist32/N3)

step test_ops        120 "$TBIN/test_ops"
step test_gpu_ops    240 "$TBIN/test_gpu_ops"
step test_gpu_conv   240 "$TBIN/test_gpu_conv"
step test_gpu_train  300 "$TBIN/test_gpu_train"
step bench-layers    180 "$BIN/ganc-bench" --layers --reps 30
step bench-csv       180 sh -c "'$BIN/ganc-bench' --layers --reps 30 --csv >'$WORK/layers.csv'"
step step-ganc       180 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda
step step-cudnn      180 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda --backend cudnn
step pytorch         180 python3 tests/gpu/pytorch_dcgan.py --batch 128 --variants eager
step memcheck-ops    240 "$SAN" --tool memcheck --error-exitcode 9 "$TBIN/test_gpu_ops" --quick
step memcheck-conv   240 "$SAN" --tool memcheck --error-exitcode 9 "$TBIN/test_gpu_conv" "${CONV_SUBSET[@]}"
step racecheck-ops   240 "$SAN" --tool racecheck --error-exitcode 9 "$TBIN/test_gpu_ops" --quick
step racecheck-conv  240 "$SAN" --tool racecheck --error-exitcode 9 "$TBIN/test_gpu_conv" "${CONV_SUBSET[@]}"

echo
echo "== ganc GPU run: logs in $WORK and $OUT/logs.tar.gz"
cat "$OUT/summary.txt"
echo "-- whole training step, dcgan64 batch 128:"
grep -h "^step:" "$WORK/step-ganc.log" "$WORK/step-cudnn.log" 2>/dev/null | cut -c1-160
grep -h "^pytorch" "$WORK/pytorch.log" 2>/dev/null
