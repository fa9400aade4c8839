#!/usr/bin/env bash
# bundle.sh — packs what a GPU machine without Debian's packages needs to run tests/gpu/run.sh:
# the programs and GPU test binaries, the non-system shared libraries `ldd` lists for them (HDF5,
# OpenBLAS, libpng, ...), and Fashion-MNIST's IDX files, as one xz tarball in bundle/ (ignored by
# git; about 25 MB, under the device tool's 64 MiB carry limit). Not packed: glibc, the GPU driver,
# cuDNN and cuBLAS, which the device machine has (run.sh finds them in its Python packages).
#   scripts/bundle.sh            then, on the device: bash tests/gpu/run.sh (carry "bundle")
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh >/dev/null
bins=(build/ganc-prep build/ganc-train build/ganc-sample build/ganc-bench build/tests/test_ops
      build/tests/test_gpu_ops build/tests/test_gpu_conv build/tests/test_gpu_train)
for b in "${bins[@]}"; do
  [[ -x "$b" ]] || { echo "error: $b was not built (is the CUDA toolkit installed?)" >&2; exit 1; }
done
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/data"
cp "${bins[@]}" "$stage/bin/"
for b in "${bins[@]}"; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv|libutil)\.so|/ld-linux|libcuda\.so|libcudnn|libcublas|libnvidia' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
cp /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
   /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz "$stage/data/"
rm -rf bundle && mkdir -p bundle
tar -C "$stage" -cf - . | xz -T0 -6 > bundle/ganc-bundle.tar.xz
echo "bundle/ganc-bundle.tar.xz: $(du -h bundle/ganc-bundle.tar.xz | cut -f1) ($(ls "$stage/lib" | wc -l) libraries)"
