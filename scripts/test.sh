#!/usr/bin/env bash
# Installs dependencies, builds, and runs every CPU test. This is the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh "$@"
cd "${BUILD:-build}"
ctest --output-on-failure -L cpu -j"${JOBS:-2}"
