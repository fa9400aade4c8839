#!/usr/bin/env bash
# deps.sh — installs the Debian packages ganc needs that are missing. Called by ./train.sh and
# ./test.sh; safe to run again (it does nothing when all is present).
#   scripts/deps.sh           what building, preparing data and training need
#   scripts/deps.sh --test    also what the tests need (cmocka, h5py for the independent reader,
#                             clang and libFuzzer for tests/fuzz and scripts/fuzz.sh)
# As root it runs apt-get itself; otherwise it uses sudo; without either it prints the exact
# command to run and exits 2. The CUDA toolkit is not a Debian package here: when nvcc is absent
# ganc builds its CPU backend only.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config  # compiler and build
  libpng-dev                        # PNG reading and writing
  libjpeg62-turbo-dev               # JPEG decoding (libjpeg-turbo)
  zlib1g-dev                        # gzip'd IDX files
  libhdf5-dev                       # shards and checkpoints
  libstb-dev                        # stb_image_resize: antialiased resizing
  libinih-dev                       # INI configs
  libopenblas-openmp-dev            # CPU BLAS, OpenMP build: one thread pool with ganc's loops
  libgif-dev                        # animated GIF latent walks (ganc-sample)
  protobuf-c-compiler libprotobuf-c-dev # TensorBoard event files (ganc-train)
  dataset-fashion-mnist             # the default dataset
)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(libcmocka-dev python3 python3-h5py python3-numpy
        python3-venv                  # the cached virtual environment with TensorBoard (test_tensorboard)
        xz-utils                      # test_gpu_dryrun packs the GPU bundle (.tar.xz)
        openmpi-bin libopenmpi-dev    # data-parallel training (mpirun -np 2) in test_mpi
        clang libclang-rt-dev libomp-dev) # the fuzzers (tests/fuzz): clang, its libFuzzer and
                                      # sanitizer runtimes, and its OpenMP (omp.h, libomp)
fi

missing=()
for p in "${pkgs[@]}"; do
  # "install ok installed" only: a removed package leaves a config-files entry behind.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "ganc: installing missing packages: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "error: these Debian packages are missing and this user cannot install them:" >&2
  echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
  echo "---> HINT: run that line as root, then run this script again" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
