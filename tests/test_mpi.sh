#!/usr/bin/env bash
# test_mpi.sh — data-parallel training under MPI on the CPU (issue 14's proof; ctest test_mpi):
#   1. 2 ranks (oversubscribed on 2 cores) against one process at the same global batch, batch
#      norm synced: the parameters agree within what the other sum order allows (mpi_compare.py)
#      — for DCGAN (cpu-demo) and for the ResNet small-folder recipe with DiffAugment and LeCam,
#      and with ADA (each rank must draw the global rows' augmentations, latents and flips, and
#      LeCam's averages and ADA's p must be the global batch's, for this to hold);
#   2. two identical 2-rank runs: the same bits; a 2-rank run stopped and resumed: the same bits
#      as one that never stopped;
#   3. a killed rank ends the job with a message naming it, and the last checkpoint resumes;
#   4. a global batch the ranks cannot share equally is refused with a message;
#   5. ganc-bench --allreduce times each network's gradient sum on 2 ranks;
#   6. the CUDA backend's path (synced batch-norm kernels, sums through host memory) with the
#      real kernels under the CUDA emulator (tests/gpu/cudemu): 2 ranks vs one process.
# Usage: test_mpi.sh BUILD_DIR FMNIST_DIR WORK_DIR. Exit 77 (skipped) without mpirun or the data.
set -uo pipefail
B=$1 FM=$2 W=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin)"; exit 77; }
[[ -f $FM/train-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST in $FM"; exit 77; }
# CI runs as root; Open MPI refuses root unless told (each rank is our own program).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# No network interfaces to probe in a sandbox: shared memory between the ranks of one machine.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
rm -rf "$W" && mkdir -p "$W"
fail=0
step() { echo "== $*"; }
bad() { echo "FAIL: $*"; fail=1; }
"$B/ganc-prep" "$FM/train-images-idx3-ubyte.gz" "$W/data" --resolution 32 --transform pad \
  --max-images 256 >/dev/null || { echo "FAIL: ganc-prep"; exit 1; }
mpi() { timeout 300 mpirun -np 2 "$@"; }
train() { "$B/ganc-train" --data "$W/data" "$@"; }
common=(--set train.batch=32 --set log.report_kimg=0.032 --set train.threads=1)

step "1a. DCGAN (cpu-demo), 2 ranks vs one process, batchnorm = sync, 2 steps"
dc=(--config configs/cpu-demo.ini "${common[@]}" --set train.kimg=0.064 --set log.snapshot_kimg=1
  --set train.batchnorm=sync --set train.mirror=true)
train --out "$W/one" "${dc[@]}" >/dev/null 2>&1 || bad "one-process run"
mpi "$B/ganc-train" --data "$W/data" --out "$W/two" "${dc[@]}" >"$W/two.log" 2>&1 ||
  { cat "$W/two.log"; bad "2-rank run"; }
grep -q "data-parallel: MPI, 2 ranks" "$W/two.log" || bad "the 2-rank run did not say it ran on 2 ranks"
"$here/mpi_compare.py" close "$W/one/ckpt-000000.064.h5" "$W/two/ckpt-000000.064.h5" 0.0002 2 ||
  bad "2 ranks vs one process (DCGAN)"

step "1a'. the same in bf16: 2 ranks run with synced batch norm (its two passes, not the slot sums)"
# train.fuse_batchnorm_stats has the convolutions sum each batch norm's statistics in tf32 and bf16
# runs, but those are one rank's: under sync the batch norms take their two passes over every
# rank's partials instead (model/net.c bn_slots), which the trainer decides at each forward.
mpi "$B/ganc-train" --data "$W/data" --out "$W/two16" "${dc[@]}" --set train.precision=bf16 \
  >"$W/two16.log" 2>&1 || { cat "$W/two16.log"; bad "2-rank bf16 run with batchnorm = sync"; }
grep -q "batch-norm statistics summed by their convolutions" "$W/two16.log" ||
  bad "the bf16 run planned no slot statistics (this check would test nothing)"

step "1b. ResNet small-folder recipe with DiffAugment, 2 ranks vs one process, 4 steps"
rs=(--config configs/small-folder.ini "${common[@]}" --set train.kimg=0.128
  --set log.snapshot_kimg=1 --set model.g_base=16 --set model.d_base=16 --set model.g_max=64
  --set model.d_max=64 --set train.batchnorm=sync --set train.mirror=true --set train.lecam=0.3
  --set train.lecam_decay=0.5)
train --out "$W/r1" "${rs[@]}" >/dev/null 2>&1 || bad "one-process ResNet run"
mpi "$B/ganc-train" --data "$W/data" --out "$W/r2" "${rs[@]}" >/dev/null 2>&1 || bad "2-rank ResNet run"
"$here/mpi_compare.py" close "$W/r1/ckpt-000000.128.h5" "$W/r2/ckpt-000000.128.h5" 0.0002 4 ||
  bad "2 ranks vs one process (ResNet + DiffAugment)"

step "1c. the same with ADA (x-flip, quarter turns at p = 0.5, p adapted), 2 ranks vs one process, 1 step"
# The ranks sum the fakes' outputs and the reals' signs, so every rank's p is one process's
# (compared exactly by mpi_compare.py: augment_p, ada_signs, ada_images, ada_rt; with a rank's own
# sums p would stay at 0.5 or move by another r_t). One step: the flips make G's few-step
# trajectory more sensitive to the sum order (Adam turns a gradient component of rounding size
# into a step of up to lr): by step 4 about 1% of G's weights are off by more than 1e-5 (max
# 1.2e-4, within 2·lr·steps; the blit alone at p = 1 does it, ADA or not), past the 0.1% that
# mpi_compare allows; after one step one weight of 223 K is.
ra=("${rs[@]/train.kimg=0.128/train.kimg=0.032}" --set augment.xflip=true
  --set augment.rot90=true --set augment.p=0.5 --set augment.ada_target=0.2
  --set augment.ada_kimg=0.1 --set augment.ada_interval=1)
train --out "$W/a1" "${ra[@]}" >/dev/null 2>&1 || bad "one-process ADA run"
mpi "$B/ganc-train" --data "$W/data" --out "$W/a2" "${ra[@]}" >/dev/null 2>&1 || bad "2-rank ADA run"
"$here/mpi_compare.py" close "$W/a1/ckpt-000000.032.h5" "$W/a2/ckpt-000000.032.h5" 0.0002 1 ||
  bad "2 ranks vs one process (ResNet + DiffAugment + ADA)"

step "1d. ADA driven by the held-out ratio, 2 ranks vs one process, 4 reports"
# Rank 0 measures r_v (D on held-out, training and fake images, B images at a time) and every
# rank takes p from it: the measure must not depend on how many ranks share the batch (the
# augmentations of held-out image j are those of row j mod the global batch), so the 2-rank run
# logs the one process's r_v (to rounding) and moves p the same way. (Weights are compared in
# 1b-1c: past 1-2 steps Adam's amplification of rounding-size gradients exceeds mpi_compare's
# 0.1% rule whatever the augmentations.)
rv=("${rs[@]}" --set log.holdout=64 --set augment.p=0.5
  --set augment.ada_target=0.1 --set augment.ada_signal=holdout --set augment.ada_kimg=1)
train --out "$W/v1" "${rv[@]}" >/dev/null 2>&1 || bad "one-process ADA-by-r_v run"
mpi "$B/ganc-train" --data "$W/data" --out "$W/v2" "${rv[@]}" >/dev/null 2>&1 || bad "2-rank ADA-by-r_v run"
python3 - "$W/v1/log.jsonl" "$W/v2/log.jsonl" <<'PY' || bad "2 ranks vs one process (ADA driven by r_v)"
import json, math, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
assert len(a) == len(b) == 4, (len(a), len(b))
for x, y in zip(a, b):
    assert x["aug_p"] == y["aug_p"], (x["aug_p"], y["aug_p"])
    for k in ("logit_train", "logit_holdout", "logit_gen"):
        assert abs(x[k] - y[k]) <= 1e-3 * (1 + abs(x[k])), (k, x[k], y[k])
    assert ("ada_rv" in x) == ("ada_rv" in y)
    if "ada_rv" in x:
        assert abs(x["ada_rv"] - y["ada_rv"]) <= 1e-2 * (1 + abs(x["ada_rv"])), (x["ada_rv"], y["ada_rv"])
print("p:", [x["aug_p"] for x in a], "r_v:", [x.get("ada_rv") for x in a], [y.get("ada_rv") for y in b])
PY

step "2. two identical 2-rank runs; a stopped and resumed one (batchnorm = local, LeCam, ADA)"
lc=(--config configs/cpu-demo.ini "${common[@]}" --set log.snapshot_kimg=0.064 --set train.mirror=true
  --set train.lecam=0.3 --set augment.xflip=true --set augment.rot90=true --set augment.p=0.3
  --set augment.ada_target=0.2 --set augment.ada_kimg=0.1 --set augment.ada_interval=1)
mpi "$B/ganc-train" --data "$W/data" --out "$W/p" "${lc[@]}" --set train.kimg=0.128 >/dev/null 2>&1 || bad "run p"
mpi "$B/ganc-train" --data "$W/data" --out "$W/q" "${lc[@]}" --set train.kimg=0.128 >/dev/null 2>&1 || bad "run q"
"$here/mpi_compare.py" exact "$W/p/ckpt-000000.128.h5" "$W/q/ckpt-000000.128.h5" ||
  bad "two identical 2-rank runs differ"
mpi "$B/ganc-train" --data "$W/data" --out "$W/r" "${lc[@]}" --set train.kimg=0.064 >/dev/null 2>&1 || bad "run r"
mpi "$B/ganc-train" --out "$W/r" --resume --set train.kimg=0.128 >"$W/r.log" 2>&1 || bad "resume r"
grep -q "resuming from" "$W/r.log" || bad "the resumed run did not say where it resumed"
"$here/mpi_compare.py" exact "$W/p/ckpt-000000.128.h5" "$W/r/ckpt-000000.128.h5" ||
  bad "a resumed 2-rank run differs from one that never stopped"

step "2b. ADA driven by r_v: a 2-rank run stopped mid-window and resumed, against a straight one"
mpi "$B/ganc-train" --data "$W/data" --out "$W/vr" "${rv[@]}" --set train.kimg=0.096 \
  --set log.report_kimg=0.064 >/dev/null 2>&1 || bad "run vr"
mpi "$B/ganc-train" --out "$W/vr" --resume --set train.kimg=0.128 >/dev/null 2>&1 || bad "resume vr"
mpi "$B/ganc-train" --data "$W/data" --out "$W/vs" "${rv[@]}" --set log.report_kimg=0.064 \
  >/dev/null 2>&1 || bad "run vs"
"$here/mpi_compare.py" exact "$W/vs/ckpt-000000.128.h5" "$W/vr/ckpt-000000.128.h5" ||
  bad "a resumed 2-rank run driven by r_v differs from one that never stopped"

step "3. a killed rank"
mpirun -np 2 "$B/ganc-train" --data "$W/data" --out "$W/k" "${lc[@]}" --set train.kimg=100 \
  --set log.snapshot_kimg=0.032 >"$W/k.log" 2>&1 &
job=$!
for _ in $(seq 1 300); do [[ -f $W/k/latest ]] && break; sleep 0.1; done
victim=""
for p in $(pgrep -f "ganc-train --data $W/data --out $W/k"); do
  [[ "$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep '^OMPI_COMM_WORLD_RANK=')" == *=1 ]] && victim=$p
done
[[ -n $victim ]] && kill -9 "$victim" || bad "could not find rank 1"
rc=0
wait "$job" || rc=$?
[[ $rc -ne 0 ]] || bad "the job exited 0 after a rank was killed"
grep -qi "rank 1.*signal 9\|rank 1.*killed" "$W/k.log" || { tail -5 "$W/k.log"; bad "no message naming the killed rank"; }
pgrep -f "ganc-train --data $W/data --out $W/k" >/dev/null && bad "ranks left running"
mpi "$B/ganc-train" --out "$W/k" --resume --set train.kimg="$(awk '{print substr($0,6,10)+0.032}' "$W/k/latest")" \
  >"$W/k2.log" 2>&1 || { cat "$W/k2.log"; bad "the last checkpoint did not resume"; }

step "4. a batch the ranks cannot share"
mpi "$B/ganc-train" --data "$W/data" --out "$W/odd" --config configs/cpu-demo.ini --set train.batch=33 \
  >"$W/odd.log" 2>&1 && bad "batch 33 on 2 ranks was accepted"
grep -q "cannot be shared equally by 2 ranks" "$W/odd.log" || { cat "$W/odd.log"; bad "no message for batch 33"; }

step "5. ganc-bench --allreduce on 2 ranks"
mpi "$B/ganc-bench" --allreduce --config configs/cpu-demo.ini --reps 3 --device cpu >"$W/ar.log" 2>&1 ||
  bad "ganc-bench --allreduce"
cat "$W/ar.log"
grep -q "cpu-demo.ini G: .* 2 ranks: median .* ms" "$W/ar.log" || bad "no timing line for G"

step "6. the CUDA backend's synced batch norm and host-memory sums, kernels under the emulator"
E=$B/tests/ganc-train-emu
if [[ -x $E ]]; then
  ge=(--config configs/cpu-demo.ini --set train.batch=16 --set train.kimg=0.032 --set log.snapshot_kimg=1
    --set log.report_kimg=0.016 --set train.threads=1 --set train.batchnorm=sync
    --set model.g_base=16 --set model.d_base=16 --device cuda)
  "$E" --data "$W/data" --out "$W/ge1" "${ge[@]}" >/dev/null 2>&1 || bad "one-process emulated CUDA run"
  # The emulator's device memory is host memory: NCCL must not see it (the sums go through host).
  GANC_NCCL_LIB=/nonexistent mpi "$E" --data "$W/data" --out "$W/ge2" "${ge[@]}" >"$W/ge2.log" 2>&1 ||
    { cat "$W/ge2.log"; bad "2-rank emulated CUDA run"; }
  "$here/mpi_compare.py" close "$W/ge1/ckpt-000000.032.h5" "$W/ge2/ckpt-000000.032.h5" 0.0002 2 ||
    bad "2 ranks vs one process on the (emulated) CUDA backend"
else
  echo "(no ganc-train-emu in this build: skipped)"
fi

[[ $fail -eq 0 ]] && echo "test_mpi: all passed"
exit $fail
