#!/usr/bin/env bash
# run.sh — every GPU test and benchmark of ganc in one call, for a machine with a GPU (the device
# machine: carry "bundle" made by scripts/bundle.sh; or any machine with a CUDA build in build/).
# Runs: the CPU op tests (sanity of the bundle), the GPU kernel tests against the CPU twins and
# cuDNN, 20 training steps GPU vs CPU and the sampler on both, compute-sanitizer memcheck and
# racecheck on the kernel tests, ganc-bench --layers (ours vs cuDNN vs cuBLAS) and --step
# (ganc's kernels and cuDNN), the PyTorch DCGAN baseline; logs go to $OUT (default /tmp/ganc-gpu),
# and a short table comes last.
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
OUT="${OUT:-/tmp/ganc-gpu}"
mkdir -p "$OUT"

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
export GANC_BIN_DIR="$BIN" GANC_SOURCE_DIR="$root" GANC_TEST_TMP="/tmp/ganc-gpu-tmp"
mkdir -p "$GANC_TEST_TMP"
nvidia-smi -L 2>/dev/null | head -2

rows=()
step() { # name, command...: runs it, keeps its log, records PASS/SKIP/FAIL and its last line
  local name="$1"; shift
  local t0=$SECONDS
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$? st
  case $rc in 0) st=PASS ;; 77) st=SKIP ;; *) st="FAIL($rc)" ;; esac
  rows+=("$(printf '%-22s %-9s %5ss  %s' "$name" "$st" $((SECONDS - t0)) "$(grep -v '^\s*$' "$OUT/$name.log" | tail -n 1 | cut -c1-90)")")
}

step test_ops        "$TBIN/test_ops"
step test_gpu_ops    "$TBIN/test_gpu_ops"
step test_gpu_conv   "$TBIN/test_gpu_conv"
step test_gpu_train  "$TBIN/test_gpu_train"
SAN="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
step memcheck-ops    "$SAN" --tool memcheck --error-exitcode 9 "$TBIN/test_gpu_ops"
step memcheck-conv   "$SAN" --tool memcheck --error-exitcode 9 "$TBIN/test_gpu_conv"
step racecheck-ops   "$SAN" --tool racecheck --error-exitcode 9 "$TBIN/test_gpu_ops"
step racecheck-conv  "$SAN" --tool racecheck --error-exitcode 9 "$TBIN/test_gpu_conv"
step bench-layers    "$BIN/ganc-bench" --layers --reps 30
"$BIN/ganc-bench" --layers --reps 30 --csv >"$OUT/layers.csv" 2>/dev/null
step step-ganc       "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda
step step-cudnn      "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda --backend cudnn
step pytorch         python3 tests/gpu/pytorch_dcgan.py --batch 128 --variants eager

echo
echo "== ganc GPU run: logs in $OUT"
printf '%-22s %-9s %6s  %s\n' "step" "result" "time" "last line"
for r in "${rows[@]}"; do echo "$r"; done
echo "-- whole training step, dcgan64 batch 128:"
grep -h "^step:" "$OUT/step-ganc.log" "$OUT/step-cudnn.log" 2>/dev/null | cut -c1-160
grep -h "^pytorch" "$OUT/pytorch.log" 2>/dev/null
