#!/usr/bin/env bash
# default-dataset.sh — makes datasets/fashion-mnist/ (the default dataset) when it is missing:
# Debian's Fashion-MNIST training set, 60,000 images, padded from 28x28 to 32x32 gray with black
# (the images' own background), labels kept.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/datasets/fashion-mnist"
src=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if "$root/build/ganc-prep" --info "$out" >/dev/null 2>&1; then exit 0; fi
if [[ ! -f "$src" ]]; then
  echo "error: $src is missing; install it with: apt-get install dataset-fashion-mnist" >&2
  exit 2
fi
echo "ganc: preparing the default dataset in $out"
"$root/build/ganc-prep" "$src" "$out" --resolution 32 --transform pad --background black --force
