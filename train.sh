#!/usr/bin/env bash
# train.sh — the one command for the main job: installs what is missing, builds, prepares the
# default dataset (Fashion-MNIST, 32x32) when needed, and trains.
#
#   ./train.sh                        train on the default dataset
#   ./train.sh --data DIR [flags...]  DIR is a shard folder, or an image folder that is first
#                                     turned into shards under datasets/<name>/ by ganc-prep
# Other flags are passed to ganc-train unchanged.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
scripts/deps.sh
scripts/build.sh >/dev/null

data=""
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --data) data="${2:?--data needs a folder}"; shift 2 ;;
    --data=*) data="${1#--data=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if [[ -z "$data" ]]; then
  scripts/default-dataset.sh
  data="$root/datasets/fashion-mnist"
elif ! compgen -G "$data/shard-*.h5" >/dev/null; then
  if [[ ! -d "$data" ]]; then
    echo "error: --data $data is not a folder" >&2
    exit 2
  fi
  name="$(basename "$(cd "$data" && pwd)")"
  shards="$root/datasets/$name"
  if ! build/ganc-prep --info "$shards" >/dev/null 2>&1; then
    echo "ganc: preparing $data into $shards"
    build/ganc-prep "$data" "$shards" --force
  fi
  data="$shards"
fi

if [[ ! -x build/ganc-train ]]; then
  echo "ganc: the dataset is ready in $data (see: build/ganc-prep --info $data)." >&2
  echo "error: this version of ganc has no trainer yet (ganc-train lands with the training issue)." >&2
  exit 1
fi
exec build/ganc-train --data "$data" "${args[@]}"
