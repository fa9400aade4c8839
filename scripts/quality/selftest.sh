#!/usr/bin/env bash
# selftest.sh — checks the quality measure (scripts/quality/) on synthetic data in a few seconds:
# PNG decoding, the Frechet formula, real vs real ~ 0, shuffled pixels and noise far, the
# asked-class agreement, determinism; with ganc-prep built, that its shards match the PNG reader.
#
#   scripts/quality/selftest.sh [WORK_DIR]     (default: a temporary folder, removed)
#
# Uses ganc-prep from $GANC_BUILD_DIR (default build/) when it is there. Exit 0 when all pass.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py=/usr/bin/python3 # Debian's python3-numpy/python3-h5py live there, not in a pyenv/venv python
if ! "$py" -c 'import numpy, h5py' 2>/dev/null; then
  echo "error: $py cannot import numpy and h5py" >&2
  echo "---> HINT: apt-get install python3-numpy python3-h5py" >&2
  exit 2
fi
work="${1:-}"
if [[ -z "$work" ]]; then
  work="$(mktemp -d "${TMPDIR:-/tmp}/ganc-quality-selftest.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
prep="${GANC_BUILD_DIR:-$root/build}/ganc-prep"
[[ -x "$prep" ]] || prep=""
"$py" "$here/selftest.py" "$work" "$prep"
