#!/usr/bin/env bash
# Installs dependencies, builds, and runs every CPU test. This is the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh "$@"
(cd "${BUILD:-build}" && ctest --output-on-failure -L cpu -j"${JOBS:-2}")
# CI also builds the ctxlab binary without CUDA, as on a machine without nvcc: every GPU entry point
# must have its stub (core/cuda/gpu_engine_stub.cc), or that build fails to link.
if [[ "${CI:-}" == true ]]; then
  cmake -S . -B build-nocuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DCTXLAB_CUDA=OFF >/dev/null
  cmake --build build-nocuda -j"${JOBS:-2}" --target ctxlab
  build-nocuda/experiments/ctxlab doctor >/dev/null
fi
