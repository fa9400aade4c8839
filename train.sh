#!/usr/bin/env bash
# train.sh — the one command for the main job: installs what is missing, builds, prepares the
# default dataset (Fashion-MNIST, 32x32) when needed, and trains.
#
#   ./train.sh                          a new run on the default dataset
#   ./train.sh --data DIR [flags...]    DIR is a shard folder, or an image folder that is first
#                                       turned into shards under datasets/<name>-<hash>-<res>/
#                                       by ganc-prep (resolution: $GANC_RESOLUTION, default 64)
#   ./train.sh --resume [flags...]      continue the newest run in checkpoints/
#   ./train.sh --config FILE ...        another recipe (default: configs/cpu-demo.ini without a
#                                       usable GPU backend, configs/fmnist32.ini with one; on a
#                                       user's folder, by its size and resolution: small-folder.ini
#                                       under 5,000 images, else resnet32/64/128.ini)
# Runs are written to checkpoints/NNNNN-<data>-<recipe>/. Other flags go to ganc-train unchanged
# (e.g. --set train.kimg=100). Ctrl-C stops after a checkpoint; --resume picks it up.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
scripts/deps.sh
scripts/build.sh >/dev/null

data="" config="" resume=0
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data="${2:?--data needs a folder}"; shift 2 ;;
    --data=*) data="${1#--data=}"; shift ;;
    --config) config="${2:?--config needs a file}"; shift 2 ;;
    --config=*) config="${1#--config=}"; shift ;;
    --resume) resume=1; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if [[ $resume -eq 1 ]]; then
  run="$(ls -d checkpoints/[0-9][0-9][0-9][0-9][0-9]-* 2>/dev/null | sort | tail -n 1 || true)"
  if [[ -z "$run" ]]; then
    echo "error: no run in checkpoints/ to resume; start one with ./train.sh" >&2
    exit 2
  fi
  # Shards made by an older ganc are refused: the default dataset is rebuilt (same images, same
  # fingerprint) so that its runs resume.
  if [[ -d datasets/fashion-mnist ]]; then scripts/default-dataset.sh; fi
  echo "ganc: resuming $run"
  exec build/ganc-train --out "$run" --resume ${data:+--data "$data"} ${config:+--config "$config"} \
    ${args[@]+"${args[@]}"}
fi

user_data=0
if [[ -z "$data" ]]; then
  scripts/default-dataset.sh
  data="$root/datasets/fashion-mnist"
elif ! compgen -G "$data/shard-*.h5" >/dev/null; then
  if [[ ! -d "$data" ]]; then
    echo "error: --data $data is not a folder" >&2
    exit 2
  fi
  # One shard folder per source folder (its real path) and resolution, so two folders that share
  # a name never share shards.
  src="$(cd "$data" && pwd -P)"
  res="${GANC_RESOLUTION:-64}"
  shards="$root/datasets/$(basename "$src")-$(printf '%s' "$src" | sha256sum | cut -c1-8)-$res"
  if ! build/ganc-prep --info "$shards" >/dev/null 2>&1; then
    echo "ganc: preparing $data into $shards"
    build/ganc-prep "$data" "$shards" --force --resolution "$res"
  fi
  data="$shards"
  user_data=1
else
  user_data=1
fi
# The recipe. The default dataset: the CPU demo unless this build can train on a GPU. A user's
# folder: by its size and resolution (ganc-prep --info's first line: "DIR: N images, RxRxC, ...").
if [[ -z "$config" ]]; then
  if [[ $user_data -eq 0 ]]; then
    if build/ganc-train --has-gpu-backend >/dev/null 2>&1; then
      config="configs/fmnist32.ini"
    else
      config="configs/cpu-demo.ini"
    fi
  else
    info="$(build/ganc-prep --info "$data" 2>/dev/null || true)"
    info="${info%%$'\n'*}" # the first line (no `| head`: pipefail would end the script)
    if [[ ! "$info" =~ :\ ([0-9]+)\ images,\ ([0-9]+)x ]]; then
      echo "error: cannot read the shards in $data (build/ganc-prep --info $data says why)" >&2
      exit 2
    fi
    n="${BASH_REMATCH[1]}" r="${BASH_REMATCH[2]}"
    if ((n < 5000)); then
      config="configs/small-folder.ini"
      why="$n images is a small folder: ResNet-SN-hinge with DiffAugment against overfitting"
    elif ((r <= 32)); then
      config="configs/resnet32.ini" why="$n images of ${r}x${r}: ResNet-SN-hinge"
    elif ((r <= 64)); then
      config="configs/resnet64.ini" why="$n images of ${r}x${r}: ResNet-SN-hinge"
    else
      config="configs/resnet128.ini" why="$n images of ${r}x${r}: ResNet-SN-hinge"
    fi
    echo "ganc: recipe $config ($why; --config FILE picks another)"
  fi
fi

# The shipped recipes name the default dataset's shape; on the user's data, follow the data.
follow=()
if [[ $user_data -eq 1 ]]; then
  follow=(--set model.resolution=0 --set model.channels=0)
fi

mkdir -p checkpoints
last="$(ls -d checkpoints/[0-9][0-9][0-9][0-9][0-9]-* 2>/dev/null | sort | tail -n 1 || true)"
next=0
if [[ -n "$last" ]]; then next=$((10#$(basename "$last" | cut -c1-5) + 1)); fi
run="$(printf 'checkpoints/%05d-%s-%s' "$next" "$(basename "$data")" "$(basename "$config" .ini)")"
echo "ganc: training $config on $data -> $run"
echo "ganc: images appear in $run/fakes-*.png; Ctrl-C stops after a checkpoint (./train.sh --resume continues)"
exec build/ganc-train --data "$data" --config "$config" --out "$run" ${follow[@]+"${follow[@]}"} ${args[@]+"${args[@]}"}
