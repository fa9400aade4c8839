#!/usr/bin/env bash
# bench-data.sh — the data side's speed, as recorded in docs/PERF.md (a benchmark, not a test):
#   1. ganc-prep converting 256x256 JPEGs to 64x64 (target: >= 400 images/s on 2 cores)
#   2. the loader streaming 64x64x3 shards from a warm page cache (target: >= 20,000 images/s)
# Usage: scripts/bench-data.sh [N_IMAGES (default 5000)] [WORK_DIR (default /tmp/ganc-bench-data)]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-5000}"
work="${2:-/tmp/ganc-bench-data}"
b="$root/build"
rm -rf "$work" && mkdir -p "$work"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$b/tests/ganc-mkimages" "$work/jpeg" "$n" --size 256x256 --format jpeg --classes 10 --quality 90
cat "$work"/jpeg/*/* >/dev/null # warm the page cache: we time decoding, not the disk
echo "== ganc-prep: $n 256x256 JPEG -> 64x64x3, --jobs $(nproc)"
"$b/ganc-prep" "$work/jpeg" "$work/shards64" --resolution 64 --jobs "$(nproc)" 2>/dev/null | tail -1
# The same shards twice: once in one window (read once, then served from memory), and with 8 MiB
# windows, so every epoch streams every chunk from HDF5 again, as a dataset larger than the
# 256 MiB window does (the loader's speed does not depend on pixel content).
echo "== loader: 64x64x3, batch 128, one window"
"$b/ganc-bench" --loader "$work/shards64" --batch 128 --repeats 5
echo "== loader: 64x64x3, batch 128, streaming (8 MiB windows)"
"$b/ganc-bench" --loader "$work/shards64" --batch 128 --repeats 5 --window-mb 8
if [[ -d "$root/datasets/fashion-mnist" ]]; then
  echo "== loader: Fashion-MNIST 32x32x1, batch 128"
  "$b/ganc-bench" --loader "$root/datasets/fashion-mnist" --batch 128 --repeats 5
fi
