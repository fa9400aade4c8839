#!/usr/bin/env bash
# run.sh — the one-shot GPU run: everything ganc needs to learn from a GPU, in one command that
# fits the device tool's window (docs/GPU-RUN.md says how to run it). Steps, in the order of what
# we must learn first:
#   programs        every program and test binary starts; a CPU training step from the recipes
#   device          the GPU (ganc-bench --device-info); without one, every GPU step is SKIP
#   kernels-mma     test_gpu_mma: mma.sync/ldmatrix/cp.async/wgmma fragment and descriptor layouts = the emulator's
#   kernels-ops     test_gpu_ops: every launcher against its CPU twin
#   kernels-conv    test_gpu_conv: the convolutions against the CPU twins and cuDNN, and every
#                   variant of the table (tensor cores) against the CPU twin in its precision
#   train-parity    test_gpu_train: 20 steps GPU vs CPU, the sampler, cross-device resumes
#   step-ours       ganc-bench --step configs/dcgan64.ini (our kernels)
#   step-bf16/tf32  the same with train.precision = bf16 / tf32 (variants timed per layer)
#   step-profile    step-bf16's steps again without the graph, each op timed: where the time goes
#   step-nograph    step-bf16 with train.cuda_graph = off: what replaying one graph per step saves
#   step-fp32acts   step-bf16 with train.bf16_activations = false: what bf16 activations save
#   step-nofuse     step-bf16 with train.fuse_activations = false: what activations in the
#                   convolutions' epilogues save
#   step-norecompute  step-bf16 with train.recompute_batchnorm = false: the time and memory that
#                   remaking batch-norm outputs for the backward costs and saves
#   step-nobnstats  step-bf16 with train.fuse_batchnorm_stats = false: what batch-norm statistics
#                   summed in the convolutions' epilogues save
#   step-cudnn      the same with train.backend = cudnn
#   pytorch         the PyTorch DCGAN baseline: strict-fp32, default, bf16-channels-last
#   layers          ganc-bench --layers: ours vs cuDNN vs cuBLAS, every layer (table + CSV)
#   nccl            data-parallel sums through NCCL on one GPU (GANC_NCCL_ONE_RANK=1): 10 steps
#                   equal a plain run's; ganc-bench --allreduce through NCCL
#   memcheck-ops, memcheck-conv, racecheck-ops, racecheck-conv
#                   compute-sanitizer on small subsets of the kernel tests, cuDNN left out
#
# Time: an overall deadline (--deadline, default 540 s, counted from the start of this script).
# Each step runs under the smaller of its own limit and the time left (less a few seconds to pack
# the logs); a step that no longer fits is NOTRUN. A step whose prerequisite is missing (no GPU,
# no compute-sanitizer, no PyTorch) is SKIP with the reason, never PASS or FAIL.
# Output: progress lines while it runs; after every step $OUT/summary.txt (the table so far) and
# $OUT/logs.tar.gz (every log, layers.csv) are rewritten, so a cut-off call still returns them.
# Exit: 0 when no step failed, timed out or was left unrun (SKIPs allowed); 1 otherwise; 2 usage.
#
# Programs: from bundle/ganc-bundle.tar.xz when present (scripts/bundle.sh; each runs through its
# wrapper, which gives the bundle's libraries to that program alone), else from build/. cuDNN and
# cuBLAS come from the system or from the Python packages (PyTorch's), for our programs only.
#
# Usage: tests/gpu/run.sh [--deadline SECONDS] [STEP...]    (STEPs: run only these; --list)
set -u
T0=$SECONDS
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

ALL_STEPS=(programs device kernels-mma kernels-ops kernels-conv train-parity step-ours step-bf16
           step-profile step-tf32 step-nograph step-fp32acts step-nofuse step-norecompute step-cudnn pytorch layers
           step-nobnstats nccl memcheck-ops memcheck-conv racecheck-ops racecheck-conv)
deadline=540
only=()
while (($#)); do
  case "$1" in
  --deadline)
    [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "run.sh: --deadline needs seconds" >&2; exit 2; }
    deadline=$2
    shift 2 ;;
  --list) printf '%s\n' "${ALL_STEPS[@]}"; exit 0 ;;
  -h | --help) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | grep '^#' | cut -c3-; exit 0 ;;
  -*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  *)
    # _sleep: a step that only sleeps, for the dry-run test of the deadline (tests/gpu/dryrun.sh)
    [[ " ${ALL_STEPS[*]} _sleep " == *" $1 "* ]] || { echo "run.sh: no step '$1' (--list)" >&2; exit 2; }
    only+=("$1")
    shift ;;
  esac
done

OUT="${OUT:-/tmp/ganc-gpu-out}"
WORK="${GANC_RUN_WORK:-/tmp/ganc-gpu}"
RESERVE=5 # seconds kept at the end for the summary and the log archive
rm -rf "$WORK" && mkdir -p "$OUT" "$WORK/tmp"
log() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*"; }

# ---- the programs --------------------------------------------------------------------------------
if [[ -f bundle/ganc-bundle.tar.xz ]]; then
  mkdir -p "$WORK/bundle" && tar -C "$WORK/bundle" -xJf bundle/ganc-bundle.tar.xz ||
    { echo "run.sh: cannot unpack bundle/ganc-bundle.tar.xz" >&2; exit 1; }
  BIN="$WORK/bundle/bin"
  export GANC_FMNIST_DIR="$WORK/bundle/data"
  log "programs from the bundle: $(head -1 "$WORK/bundle/MANIFEST")"
else
  # The build tree, through the same kind of wrappers, so every command below reads alike.
  BIN="$WORK/bin"
  mkdir -p "$BIN"
  for p in build/ganc-prep build/ganc-train build/ganc-sample build/ganc-bench build/tests/test_ops \
    build/tests/test_gpu_ops build/tests/test_gpu_conv build/tests/test_gpu_train build/tests/test_gpu_mma; do
    printf '#!/bin/sh\nHDF5_USE_FILE_LOCKING=FALSE exec "%s" "$@"\n' "$root/$p" >"$BIN/${p##*/}"
    chmod +x "$BIN/${p##*/}"
  done
  export GANC_FMNIST_DIR="${GANC_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"
  log "programs from build/ (no bundle/ganc-bundle.tar.xz)"
fi
# cuDNN and cuBLAS from PyTorch's Python packages when the system has none: a list for the
# wrappers (GANC_CUDA_LIBS), not LD_LIBRARY_PATH, so that nothing else loads them.
cuda_libs=()
for mod in nvidia.cudnn nvidia.cublas nvidia.cu13 nvidia.nccl; do
  d=$(python3 -c "import $mod, os; print(os.path.dirname($mod.__file__ or list($mod.__path__)[0]))" 2>/dev/null) || continue
  while read -r lib; do cuda_libs+=("$(dirname "$lib")"); done < <(find "$d" \( -name 'libcudnn.so.9' -o -name 'libcublas.so.1*' -o -name 'libnccl.so.2' \) 2>/dev/null)
done
GANC_CUDA_LIBS="$(printf '%s\n' "${cuda_libs[@]}" | sort -u | paste -sd: -)"
export GANC_CUDA_LIBS GANC_BIN_DIR="$BIN" GANC_SOURCE_DIR="$root" GANC_TEST_TMP="$WORK/tmp"
SAN="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"

# ---- the table -----------------------------------------------------------------------------------
rows=() failed=0 no_gpu=""
summary() {
  {
    printf '%-15s %-9s %6s  %s\n' step result time "last line / reason"
    printf '%s\n' "${rows[@]}"
  } >"$OUT/summary.txt"
  tar -C "$WORK" -czf "$OUT/logs.tar.gz.tmp" --exclude=./tmp --exclude=./bundle --exclude=./bin . 2>/dev/null &&
    mv "$OUT/logs.tar.gz.tmp" "$OUT/logs.tar.gz"
}
record() { # name, result, seconds, text
  rows+=("$(printf '%-15s %-9s %5ss  %s' "$1" "$2" "$3" "${4:0:110}")")
  case "$2" in PASS | SKIP) ;; *) failed=1 ;; esac
  log "$1: $2 in $3s${4:+: ${4:0:110}}"
  summary
}
wanted() { ((${#only[@]} == 0)) && [[ "$1" != _* ]] || [[ " ${only[*]} " == *" $1 "* ]]; }

# step NAME LIMIT COMMAND...: runs COMMAND under min(LIMIT, time left), its output in
# $WORK/NAME.log, with a progress line every 30 s; exit 77 (our tests' skip code) is SKIP.
step() {
  local name="$1" limit="$2"
  shift 2
  wanted "$name" || return 0
  local left=$((deadline - (SECONDS - T0) - RESERVE))
  if ((left < 10)); then
    record "$name" NOTRUN 0 "deadline: ${left}s left of ${deadline}s"
    return 0
  fi
  ((limit > left)) && limit=$left
  log "$name: started (limit ${limit}s)"
  local t=$SECONDS rc
  timeout -k 5 "$limit" "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$! next=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if ((SECONDS >= next)); then
      log "$name: running $((SECONDS - t))s: $(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1 | cut -c1-100)"
      next=$((SECONDS + 30))
    fi
  done
  wait "$pid"
  rc=$?
  local last
  last="$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1)"
  case $rc in
  0) record "$name" PASS $((SECONDS - t)) "$last" ;;
  77) record "$name" SKIP $((SECONDS - t)) "$(grep -m1 '^SKIP' "$WORK/$name.log" || echo "$last")" ;;
  124 | 137) record "$name" TIMEOUT $((SECONDS - t)) "cut at ${limit}s: $last" ;;
  *) record "$name" "FAIL($rc)" $((SECONDS - t)) "$last" ;;
  esac
}
# skip NAME REASON: a step whose prerequisite is missing.
skip() { wanted "$1" && record "$1" SKIP 0 "SKIP: $2"; }
# gpu_step NAME LIMIT COMMAND...: a step that needs the GPU.
gpu_step() { if [[ -n "$no_gpu" ]]; then skip "$1" "$no_gpu"; else step "$@"; fi; }
san_step() {
  if [[ -n "$no_gpu" ]]; then
    skip "$1" "$no_gpu"
  elif [[ ! -x "$SAN" ]]; then
    skip "$1" "no compute-sanitizer on this machine"
  else
    step "$@"
  fi
}

# A step that only sleeps, run only when named: the dry run's check of the deadline.
step _sleep 600 sleep "${GANC_RUN_SLEEP:-600}"

# ---- 0. the programs start, the recipes are found from here ---------------------------------------
programs() {
  local p rc=0
  for p in ganc-prep ganc-train ganc-sample ganc-bench test_gpu_ops test_gpu_conv test_gpu_train \
    test_gpu_mma; do
    if "$BIN/$p" --help >/dev/null 2>&1; then echo "ok   $p --help"; else echo "FAIL $p --help"; rc=1; fi
  done
  "$BIN/test_gpu_conv" --list | tail -1 || rc=1
  "$BIN/ganc-bench" --step configs/cpu-demo.ini --device cpu --batch 8 --steps 1 --warmup 0 || rc=1
  "$BIN/test_ops" >"$WORK/test_ops.out" 2>&1 && tail -1 "$WORK/test_ops.out" || { cat "$WORK/test_ops.out"; rc=1; }
  return $rc
}
export -f programs
export BIN WORK
step programs 120 bash -c programs

# ---- 1. the device -------------------------------------------------------------------------------
"$BIN/ganc-bench" --device-info >"$WORK/device.log" 2>&1
case $? in
0) ;;
77) no_gpu="$(sed -n 's/^SKIP: //p' "$WORK/device.log" | head -1)" ;;
*) no_gpu="ganc-bench --device-info failed: $(tail -1 "$WORK/device.log")" ;;
esac
nvidia-smi -L >>"$WORK/device.log" 2>&1
if wanted device; then
  if [[ -n "$no_gpu" ]]; then record device SKIP 0 "SKIP: $no_gpu"; else record device PASS 0 "$(head -1 "$WORK/device.log")"; fi
fi

# ---- 2. kernels against the CPU twins and cuDNN; training parity ---------------------------------
gpu_step kernels-mma 30 "$BIN/test_gpu_mma"
gpu_step kernels-ops 120 "$BIN/test_gpu_ops"
gpu_step kernels-conv 240 "$BIN/test_gpu_conv"
# The CPU side of the parity runs with OpenBLAS's AVX2 kernels, as in CI (tests/CMakeLists.txt:
# on an AVX-512 CPU its sgemm sums in another order, which a few hinge-loss steps amplify).
gpu_step train-parity 240 env OPENBLAS_CORETYPE=Haswell "$BIN/test_gpu_train"

# ---- 3. whole training steps: ours, cuDNN's, PyTorch's ------------------------------------------
gpu_step step-ours 90 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda
gpu_step step-bf16 90 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=bf16
# Where step-bf16's time goes: the same steps again eagerly, each op between two CUDA events, by
# op and by place (core/prof.h); the CSV beside layers.csv. What decides the next fusion.
gpu_step step-profile 60 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=bf16 --profile --csv "$WORK/profile.csv"
gpu_step step-tf32 90 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=tf32
gpu_step step-nograph 60 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=bf16 --set train.cuda_graph=off
gpu_step step-fp32acts 60 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=bf16 --set train.bf16_activations=false
gpu_step step-nofuse 60 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=bf16 --set train.fuse_activations=false
gpu_step step-norecompute 60 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=bf16 --set train.recompute_batchnorm=false
gpu_step step-cudnn 90 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda --backend cudnn
# PyTorch runs with the machine's own libraries (no wrapper); it reports SKIP itself without
# torch or without a GPU it can use.
if [[ -n "$no_gpu" ]]; then
  skip pytorch "$no_gpu"
else
  step pytorch 150 env PYTHONUNBUFFERED=1 python3 tests/gpu/pytorch_dcgan.py --batch 128 \
    --variants strict-fp32,default,bf16-channels-last,bf16-cl-graphs
fi

# ---- 4. the per-layer table, once: the table in the log, the CSV beside it ------------------------
gpu_step layers 150 "$BIN/ganc-bench" --layers --reps 30 --csv "$WORK/layers.csv"
# (after the baselines and the layers: the newest comparison yields to them under the deadline)
gpu_step step-nobnstats 45 "$BIN/ganc-bench" --step configs/dcgan64.ini --device cuda \
  --set train.precision=bf16 --set train.fuse_batchnorm_stats=false

# ---- 4b. NCCL on one GPU: the sums of a data-parallel run (docs/SCALE.md) ------------------------
# One rank whose gradient sums still go through NCCL: the same bits as a plain run (a sum over one
# rank is the identity), and the time of one NCCL all-reduce of each network's block.
nccl_check() {
  local S=(--config configs/cpu-demo.ini --set train.kimg=0.32 --set train.batch=32
    --set log.snapshot_kimg=1 --set log.report_kimg=0.032 --device cuda) rc=0
  "$BIN/ganc-prep" "$GANC_FMNIST_DIR/train-images-idx3-ubyte.gz" "$WORK/nccl-data" --resolution 32 \
    --transform pad --max-images 512 >/dev/null || return 1
  "$BIN/ganc-train" --data "$WORK/nccl-data" --out "$WORK/nccl-plain" "${S[@]}" >/dev/null || return 1
  GANC_NCCL_ONE_RANK=1 "$BIN/ganc-train" --data "$WORK/nccl-data" --out "$WORK/nccl-one" "${S[@]}" || return 1
  local k='s/.*"loss_D": ([^,]*), "loss_G": ([^,]*), "D_x": ([^,]*), "D_G_z": ([^,]*),.*/\1 \2 \3 \4/'
  if diff <(sed -E "$k" "$WORK/nccl-plain/log.jsonl") <(sed -E "$k" "$WORK/nccl-one/log.jsonl"); then
    echo "nccl: 10 steps through NCCL equal the plain run's losses"
  else
    echo "FAIL: the NCCL run's losses differ from the plain run's"; rc=1
  fi
  GANC_NCCL_ONE_RANK=1 "$BIN/ganc-bench" --allreduce --device cuda --reps 50 || rc=1
  return $rc
}
export -f nccl_check
gpu_step nccl 90 bash -c nccl_check

# ---- 5. compute-sanitizer on small subsets, cuDNN never initialised ------------------------------
# The wrappers are shell scripts that exec the test binary: --target-processes all follows them.
CONV_SUBSET=(--no-cudnn --match odd --match split-K --match fmnist32/N3)
# racecheck instruments every shared-memory access: on the H200 the subset above got through 3
# variants of its first shape in 120 s. Three tiny shapes instead, on which between them every
# variant of the table runs (the odd8 one: g128's family and the thin kernels' shared-memory path).
RACE_SUBSET=(--no-cudnn --match "odd 4x4 s2 p1" --match "odd8 1x1 s2 p0")
SANX=("$SAN" --target-processes all --error-exitcode 9)
san_step memcheck-ops 120 "${SANX[@]}" --tool memcheck "$BIN/test_gpu_ops" --quick --no-cudnn
san_step memcheck-conv 120 "${SANX[@]}" --tool memcheck "$BIN/test_gpu_conv" "${CONV_SUBSET[@]}"
san_step racecheck-ops 120 "${SANX[@]}" --tool racecheck "$BIN/test_gpu_ops" --quick --no-cudnn
san_step racecheck-conv 120 "${SANX[@]}" --tool racecheck "$BIN/test_gpu_conv" "${RACE_SUBSET[@]}"

# ---- the summary ---------------------------------------------------------------------------------
summary
echo
echo "== ganc GPU run, $((SECONDS - T0))s of ${deadline}s: logs in $WORK and $OUT/logs.tar.gz"
head -1 "$WORK/device.log" 2>/dev/null
cat "$OUT/summary.txt"
if grep -qh "^step:" "$WORK"/step-*.log 2>/dev/null || grep -q "^pytorch" "$WORK/pytorch.log" 2>/dev/null; then
  echo "-- whole training step, dcgan64 batch 128:"
  grep -h "^step:" "$WORK"/step-*.log 2>/dev/null | cut -c1-200
  grep -h "^pytorch" "$WORK/pytorch.log" 2>/dev/null
fi
exit $failed
