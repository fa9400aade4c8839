#!/usr/bin/env bash
# test-venv.sh — the cached Python virtual environment of the tests that check ganc's files with
# other projects' own readers: TensorBoard's event reader (test_tensorboard) and ONNX Runtime
# (test_onnx). Made once per machine, reused after:
#   ${GANC_CACHE_DIR:-$HOME/.cache/ganc}/venv-test   (Debian's python3 + python3-venv, from PyPI)
# Prints the environment's python on stdout; exit 1 with the reason on stderr when it cannot be
# made (no python3-venv, no network), in which case those tests report SKIP with that reason.
set -euo pipefail
# Fixed versions: the tests check these readers, not whatever is newest. TensorBoard 2.17
# predates NumPy 2 (np.string_).
PKGS=(tensorboard==2.17.0 numpy==1.26.4 onnxruntime==1.19.2)
venv="${GANC_CACHE_DIR:-$HOME/.cache/ganc}/venv-test"
py="$venv/bin/python3"
want="$(printf '%s\n' "${PKGS[@]}")"
if [[ -x "$py" ]] && [[ "$(cat "$venv/ganc-pkgs" 2>/dev/null)" == "$want" ]] &&
  "$py" -c "import tensorboard, numpy, onnxruntime" 2>/dev/null; then
  echo "$py"
  exit 0
fi
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
/usr/bin/python3 -m venv "$venv" >&2 || { echo "test-venv: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
"$py" -m pip install -q --disable-pip-version-check "${PKGS[@]}" >&2 ||
  { echo "test-venv: pip install ${PKGS[*]} failed (no network?)" >&2; rm -rf "$venv"; exit 1; }
echo "$want" >"$venv/ganc-pkgs"
echo "$py"
