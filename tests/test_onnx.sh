#!/usr/bin/env bash
# test_onnx.sh — ctest test_onnx: ganc-export's ONNX models, run by ONNX Runtime (from the cached
# environment of scripts/test-venv.sh), reproduce ganc-sample's pixels for the same latents, for
# a DCGAN generator (also with spectral norm on G, folded into the weights) and a class-
# conditional ResNet one (tests/onnx_check.py says the tolerance).
# Also: what ganc-export refuses. Usage: test_onnx.sh BUILD_DIR FMNIST_DIR WORK_DIR.
# Exit 77 (skipped) with the reason without the environment (no network) or Fashion-MNIST.
set -uo pipefail
B=$1 FM=$2 W=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cfg=$here/../configs
[[ -f $FM/train-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST in $FM"; exit 77; }
py=$("$here/../scripts/test-venv.sh" 2>"$W.venv.log") || { echo "SKIP: $(tail -1 "$W.venv.log")"; exit 77; }
rm -rf "$W" && mkdir -p "$W"
fail=0
"$B/ganc-prep" "$FM/train-images-idx3-ubyte.gz" "$W/data" --resolution 32 --transform pad \
  --max-images 256 >/dev/null || { echo "FAIL: ganc-prep"; exit 1; } # with the IDX labels
common=(--set train.kimg=0.128 --set train.batch=32 --set log.snapshot_kimg=1 --set train.threads=1)
"$B/ganc-train" --data "$W/data" --config "$cfg/cpu-demo.ini" --out "$W/dcgan" "${common[@]}" \
  >/dev/null 2>&1 || { echo "FAIL: DCGAN run"; exit 1; }
"$B/ganc-train" --data "$W/data" --config "$cfg/resnet32.ini" --out "$W/resnet" "${common[@]}" \
  --set model.g_base=16 --set model.d_base=16 --set model.g_max=64 --set model.d_max=64 \
  --set model.conditional=yes >/dev/null 2>&1 || { echo "FAIL: conditional ResNet run"; exit 1; }
# Spectral norm on G too (model.spectral_norm = gd): the export folds W / sigma into the weights.
"$B/ganc-train" --data "$W/data" --config "$cfg/cpu-demo.ini" --out "$W/dcgan-sn" "${common[@]}" \
  --set model.spectral_norm=gd >/dev/null 2>&1 || { echo "FAIL: DCGAN run with SN on G"; exit 1; }
"$py" "$here/onnx_check.py" "$B" "$W" dcgan "$W/dcgan" || fail=1
"$py" "$here/onnx_check.py" "$B" "$W" dcgan-sn "$W/dcgan-sn" || fail=1
"$py" "$here/onnx_check.py" "$B" "$W" resnet "$W/resnet" 10 || fail=1
# Refusals: no model path, a file that is not a checkpoint.
"$B/ganc-export" "$W/dcgan" >/dev/null 2>&1 && { echo "FAIL: no --onnx was accepted"; fail=1; }
echo "not hdf5" >"$W/junk.h5"
"$B/ganc-export" --onnx "$W/junk.onnx" "$W/junk.h5" >"$W/junk.log" 2>&1 && { echo "FAIL: junk accepted"; fail=1; }
[[ -e $W/junk.onnx ]] && { echo "FAIL: a model was written for junk"; fail=1; }
[[ $fail -eq 0 ]] && echo "test_onnx: all passed"
exit $fail
