#!/usr/bin/env bash
# bundle.sh — packs what a GPU machine without Debian's packages needs to run tests/gpu/run.sh
# (the device machine: Ubuntu 24.04 with the NVIDIA driver, CUDA and PyTorch, no Debian packages)
# into one xz tarball, bundle/ganc-bundle.tar.xz (ignored by git; ~50 MB, under the device tool's
# 64 MiB carry limit):
#   libexec/   the four programs and the GPU test binaries, as built
#   bin/       one small wrapper per program: it runs libexec/<name> with lib/ (and $GANC_CUDA_LIBS,
#              where run.sh puts cuDNN) on LD_LIBRARY_PATH and HDF5_USE_FILE_LOCKING=FALSE, for
#              that program alone: nothing else on the machine (Python, compute-sanitizer, the
#              shell) sees the bundle's libraries
#   lib/       the shared libraries `ldd` lists for them (HDF5, OpenBLAS, libpng, libcurl, ...)
#              except glibc, the GPU driver, cuDNN/cuBLAS (the device has them, run.sh finds them)
#              and libstdc++/libgcc_s (Ubuntu 24.04's are newer than Debian 12's: checked below)
#   data/      Fashion-MNIST's IDX files (the GPU training test's data)
#   MANIFEST   what is inside and the newest glibc/libstdc++ symbol versions it needs
# Usage: scripts/bundle.sh [--build DIR] [--out FILE] [--level N]
#   --build DIR  take the programs from the build folder DIR as they are (default: build/, built
#                first by scripts/build.sh)
#   --out FILE   where to write the tarball (default bundle/ganc-bundle.tar.xz)
#   --level N    xz level 0-9 (default 6; the CI dry run uses 0)
# Then, on the device: carry "bundle" and run `bash tests/gpu/run.sh` (docs/GPU-RUN.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="" out="$root/bundle/ganc-bundle.tar.xz" level=6
while (($#)); do
  case "$1" in
  --build) build="$(cd "$2" && pwd)"; shift 2 ;;
  --out) out="$2"; shift 2 ;;
  --level) level="$2"; shift 2 ;;
  *) echo "usage: scripts/bundle.sh [--build DIR] [--out FILE] [--level N]" >&2; exit 2 ;;
  esac
done
if [[ -z "$build" ]]; then
  scripts/build.sh >/dev/null
  build="${GANC_BUILD_DIR:-$root/build}"
fi

# The newest symbol versions Ubuntu 24.04 provides (glibc 2.39, GCC 14's libstdc++): the bundle
# relies on the device's own glibc and libstdc++, so nothing in it may need newer ones.
MAX_GLIBC=2.39 MAX_GLIBCXX=3.4.33

progs=(ganc-prep ganc-train ganc-sample ganc-bench)
tests=(test_ops test_gpu_ops test_gpu_conv test_gpu_train test_gpu_mma)
bins=()
for p in "${progs[@]}"; do bins+=("$build/$p"); done
for t in "${tests[@]}"; do bins+=("$build/tests/$t"); done
for b in "${bins[@]}"; do
  [[ -x "$b" ]] || { echo "error: $b was not built (is the CUDA toolkit installed?)" >&2; exit 1; }
done
fmnist=/usr/share/datasets/fashion-mnist
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz; do
  [[ -f "$fmnist/$f" ]] || { echo "error: $fmnist/$f is missing (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
done

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/libexec" "$stage/lib" "$stage/data"
cp "${bins[@]}" "$stage/libexec/"
for b in "${bins[@]}"; do
  n="$(basename "$b")"
  cat >"$stage/bin/$n" <<EOF
#!/bin/sh
# ganc bundle: runs libexec/$n with the bundle's libraries visible to it (and its children) alone.
here="\$(cd "\$(dirname "\$0")/.." && pwd)"
LD_LIBRARY_PATH="\$here/lib\${GANC_CUDA_LIBS:+:\$GANC_CUDA_LIBS}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" \\
HDF5_USE_FILE_LOCKING=FALSE exec "\$here/libexec/$n" "\$@"
EOF
  chmod +x "$stage/bin/$n"
done
system='/(libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libstdc\+\+|libgcc_s)\.so|/ld-linux'
device='lib(cuda|cudnn[a-z_]*|cublas[A-Za-z]*|nvidia[-a-z]*)\.so'
for b in "${bins[@]}"; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
  grep -v -E "$system|$device" | while read -r lib; do cp -L "$lib" "$stage/lib/"; done
cp "$fmnist/train-images-idx3-ubyte.gz" "$fmnist/train-labels-idx1-ubyte.gz" "$stage/data/"

# Newest glibc / libstdc++ symbol versions needed by anything in the bundle.
newest() { # prefix: the highest version of that prefix among the bundle's dynamic symbols
  for f in "$stage"/libexec/* "$stage"/lib/*; do objdump -T "$f" 2>/dev/null; done |
    grep -o "($1[0-9.]*)" | tr -d '()' | sed "s/^$1//" | sort -t. -k1,1n -k2,2n -k3,3n | tail -1
}
vle() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -t. -k1,1n -k2,2n -k3,3n | tail -1)" == "$2" ]]; }
need_glibc="$(newest GLIBC_)" need_glibcxx="$(newest GLIBCXX_)"
vle "${need_glibc:-0}" "$MAX_GLIBC" ||
  { echo "error: the bundle needs glibc $need_glibc, newer than Ubuntu 24.04's $MAX_GLIBC" >&2; exit 1; }
vle "${need_glibcxx:-0}" "$MAX_GLIBCXX" || {
  echo "error: the bundle needs libstdc++ GLIBCXX_$need_glibcxx, newer than Ubuntu 24.04's" \
       "$MAX_GLIBCXX: bundle libstdc++.so.6 and libgcc_s.so.1 too" >&2; exit 1; }
{
  echo "ganc bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) from $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "needs: glibc >= ${need_glibc:-none}, libstdc++ GLIBCXX >= ${need_glibcxx:-none}," \
       "the NVIDIA driver, cuDNN 9 (cuBLAS for ganc-bench's baseline)"
  echo "programs: ${progs[*]}"
  echo "tests: ${tests[*]}"
  echo "libraries: $(ls "$stage/lib" | tr '\n' ' ')"
} >"$stage/MANIFEST"

mkdir -p "$(dirname "$out")"
# One thread and a dictionary larger than a program: each binary embeds the same ~20 MB of CUDA
# kernels (two architectures), and only a window that reaches back over a whole binary lets xz
# store them once (107 MB with -T0's independent blocks, ~50 MB like this).
tar -C "$stage" -cf - . | xz -T1 --lzma2=preset="$level",dict=192MiB >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out: $(du -h "$out" | cut -f1) ($(ls "$stage/lib" | wc -l) libraries; needs glibc" \
     "${need_glibc:-?}, GLIBCXX ${need_glibcxx:-none})"
