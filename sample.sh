#!/usr/bin/env bash
# sample.sh — images from a trained generator: builds if needed, then runs ganc-sample on the
# latest checkpoint of the newest run in checkpoints/ unless --ckpt is given.
#
#   ./sample.sh                                   64 images (seeds 0-63) → <run>/samples.png
#   ./sample.sh --seeds 0-15 --truncation 0.7     other seeds, pulled toward the mean
#   ./sample.sh --interp 1,7,42                   a latent walk → <run>/walk.gif
#   ./sample.sh --outdir out/ --seeds 0-99        one PNG per seed
#   ./sample.sh --class Trouser                   a conditional run: one class (--per-class: a row each)
# Every flag is ganc-sample's (build/ganc-sample --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
if [[ ! -x build/ganc-sample ]]; then
  scripts/deps.sh
  scripts/build.sh >/dev/null
fi
has_ckpt=0 has_out=0 interp=0
for a in "$@"; do
  case "$a" in
    --ckpt|--ckpt=*) has_ckpt=1 ;;
    --out|--out=*|--outdir|--outdir=*) has_out=1 ;;
    --interp|--interp=*) interp=1 ;;
  esac
done
extra=()
run=""
if [[ $has_ckpt -eq 0 ]]; then
  run="$(ls -d checkpoints/*/ 2>/dev/null | while read -r d; do [[ -f "$d/latest" ]] && echo "${d%/}"; done | sort | tail -n 1 || true)"
  if [[ -z "$run" ]]; then
    echo "error: no trained run in checkpoints/ — train one with ./train.sh, or pass --ckpt FILE" >&2
    exit 2
  fi
  extra+=(--ckpt "$run")
fi
if [[ $has_out -eq 0 ]]; then
  if [[ $interp -eq 1 ]]; then extra+=(--out "${run:-.}/walk.gif"); else extra+=(--out "${run:-.}/samples.png"); fi
fi
exec build/ganc-sample ${extra[@]+"${extra[@]}"} "$@"
