#!/usr/bin/env bash
# run_compare.sh — the quality measure for one run: samples N images from a checkpoint with
# ganc-sample (seeds 0..N-1, the EMA generator unless --no-ema), makes them into shards with
# ganc-prep, and prints measure.py's one JSON line (FCD, KID, class histogram; with --class, the
# fraction classified as the asked class). Progress goes to stderr.
#
#   scripts/quality/run_compare.sh RUN_DIR|CKPT.h5 --model CLF.npz --real SHARDS [options]
#
#   --model FILE   classifier from classifier.py          (default: $GANC_QUALITY_MODEL)
#   --real DIR     real shards to compare with             (default: $GANC_QUALITY_REAL)
#   --n N          generated and real images (default 5000)
#   --class K      conditional: ganc-sample --class K, and measure the asked-class agreement
#   --class all    conditional: N/classes images of each class (class k gets its own seeds),
#                  the asked-class agreement overall and per class; class k must mean the same
#                  class to the generator and the classifier (train both on the same shards)
#   --tag TEXT     copied into the JSON (default: the checkpoint's path)
#   --work DIR     keep the PNGs and shards there (default: a temporary folder, removed)
#   --build DIR    where ganc-sample and ganc-prep are (default: $GANC_BUILD_DIR or build/)
#   --threads N    BLAS threads for measure.py (default 1)
#   --no-ema       sample the raw generator
#   -- ARGS        anything after -- goes to ganc-sample (e.g. --truncation 0.7)
#
# Exit status: 0 ok, 1 runtime failure, 2 bad usage or input.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py=/usr/bin/python3 # Debian's python3-numpy/python3-h5py live there, not in a pyenv/venv python

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit "${1:-2}"
}
die() { echo "error: $1" >&2; [[ -n "${2:-}" ]] && echo "---> HINT: $2" >&2; exit "${3:-2}"; }

ckpt="" model="${GANC_QUALITY_MODEL:-}" real="${GANC_QUALITY_REAL:-}" n=5000 cls="" tag=""
work="" build="${GANC_BUILD_DIR:-$root/build}" threads=1 sample_extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --real) real="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --class) cls="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --no-ema) sample_extra+=(--no-ema); shift ;;
    --) shift; sample_extra+=("$@"); break ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option $1" "see $0 --help" ;;
    *) [[ -z "$ckpt" ]] || die "two checkpoints given ($ckpt, $1)" "give one run folder or file"
       ckpt="$1"; shift ;;
  esac
done
[[ -n "$ckpt" ]] || usage
[[ -e "$ckpt" ]] || die "$ckpt: no such run folder or checkpoint"
[[ -n "$model" ]] || die "no classifier given" \
  "pass --model FILE.npz (train it with $here/classifier.py) or set GANC_QUALITY_MODEL"
[[ -n "$real" ]] || die "no real shards given" "pass --real SHARDS or set GANC_QUALITY_REAL"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "--n $n is not a positive integer"
for tool in ganc-sample ganc-prep; do
  [[ -x "$build/$tool" ]] || die "$build/$tool not found" \
    "build ganc (scripts/build.sh) or pass --build DIR"
done
[[ -f "$model" ]] || die "$model: no such classifier file" \
  "train one with $here/classifier.py --train SHARDS --test SHARDS --out $model"
# The default tag names the checkpoint file (a run folder's `latest` holds its name, one line).
if [[ -z "$tag" ]]; then
  if [[ -d "$ckpt" && -f "$ckpt/latest" ]]; then
    tag="$(readlink -f "$ckpt")/$(head -n 1 "$ckpt/latest")"
  else
    tag="$(readlink -f "$ckpt")"
  fi
fi

# The classifier fixes the resolution and channels the generated images must have.
read -r res chans nclass < <("$py" -c "
import json, sys, numpy as np
m = json.loads(str(np.load(sys.argv[1])['meta']))
print(m['input_shape'][0], m['input_shape'][2], len(m['class_names']))" "$model") \
  || die "$model: cannot read the classifier"

cleanup=""
if [[ -z "$work" ]]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/ganc-quality.XXXXXX")"
  cleanup="$work"
fi
trap 'if [[ -n "$cleanup" ]]; then rm -rf "$cleanup"; fi' EXIT
rm -rf "$work/png" "$work/shards"
mkdir -p "$work"

asked_args=()
if [[ -n "$cls" ]]; then
  "$build/ganc-sample" --help 2>&1 | grep -q -- '--class' \
    || die "this ganc-sample has no --class option" "build a ganc that has it (issue 11)"
fi
if [[ "$cls" == all ]]; then
  per=$((n / nclass))
  ((per >= 1)) || die "--n $n is below the $nclass classes of $model" "raise --n"
  n=$((per * nclass))
  echo "run_compare: sampling $per images of each of $nclass classes from $ckpt" >&2
  : >"$work/asked.txt"
  for ((k = 0; k < nclass; k++)); do
    lo=$((k * per)) hi=$((k * per + per - 1))
    "$build/ganc-sample" --ckpt "$ckpt" --outdir "$work/png/class$k" --seeds "$lo-$hi" \
      --class "$k" "${sample_extra[@]}" >&2 || die "ganc-sample --class $k failed on $ckpt" "" 1
    seq "$lo" "$hi" | sed "s/\$/ $k/" >>"$work/asked.txt"
  done
  first="$work/png/class0/seed0000.png"
  asked_args=(--asked "$work/asked.txt")
else
  class_args=()
  if [[ -n "$cls" ]]; then
    class_args=(--class "$cls")
    asked_args=(--asked-class "$cls")
  fi
  echo "run_compare: sampling $n images from $ckpt" >&2
  "$build/ganc-sample" --ckpt "$ckpt" --outdir "$work/png" --seeds "0-$((n - 1))" \
    "${class_args[@]}" "${sample_extra[@]}" >&2 || die "ganc-sample failed on $ckpt" "" 1
  first="$work/png/seed0000.png"
fi
# Check the size before ganc-prep, which would rescale silently.
got="$("$py" -c "
import sys; sys.path.insert(0, sys.argv[1]); import qlib
im = qlib.read_png(sys.argv[2]); print(im.shape[0], im.shape[1])" "$here" "$first")"
[[ "$got" == "$res $res" ]] \
  || die "the generator makes ${got/ /x} images, the classifier takes ${res}x${res}" \
  "train a classifier on shards of this resolution (classifier.py --train)"
echo "run_compare: ganc-prep into shards" >&2
"$build/ganc-prep" "$work/png" "$work/shards" --resolution "$res" --channels "$chans" \
  --labels none --jobs 1 --force >&2 || die "ganc-prep failed on $work/png" "" 1
echo "run_compare: measuring" >&2
"$py" "$here/measure.py" --model "$model" --real "$real" --fake "$work/shards" --n "$n" \
  --threads "$threads" --tag "$tag" "${asked_args[@]}"
