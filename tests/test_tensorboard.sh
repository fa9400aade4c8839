#!/usr/bin/env bash
# test_tensorboard.sh — ctest test_tensorboard: TensorBoard's own event reader (from the cached
# virtual environment of scripts/test-venv.sh) reads back every scalar and image ganc-train logged,
# across an interrupted and resumed run (tests/tb_read.py says what is checked).
# Usage: test_tensorboard.sh BUILD_DIR FMNIST_DIR WORK_DIR. Exit 77 (skipped) with the reason when
# the environment cannot be made (no network for PyPI) or Fashion-MNIST is missing.
set -uo pipefail
B=$1 FM=$2 W=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ -f $FM/train-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST in $FM"; exit 77; }
py=$("$here/../scripts/test-venv.sh" 2>"$W.venv.log") || { echo "SKIP: $(tail -1 "$W.venv.log")"; exit 77; }
rm -rf "$W" && mkdir -p "$W"
"$B/ganc-prep" "$FM/train-images-idx3-ubyte.gz" "$W/data" --resolution 32 --transform pad \
  --max-images 256 >/dev/null || { echo "FAIL: ganc-prep"; exit 1; }
"$py" "$here/tb_read.py" "$B/ganc-train" "$W/data" "$W/tb" "$here/../configs/cpu-demo.ini" 2>&1 |
  grep -v '^kimg\|^device:'
exit "${PIPESTATUS[0]}"
