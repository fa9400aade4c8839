#!/usr/bin/env bash
# test.sh — installs what is missing, builds, and runs every test (ctest). Its last lines are
# ctest's summary. GPU tests report "skipped" on machines without a GPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/deps.sh --test
scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)"
