#!/usr/bin/env bash
# Configures and builds ctxlab in build/ (Release; CUDA compiled when nvcc is found).
# Extra arguments go to CMake's configure step, e.g. scripts/build.sh -DCTXLAB_CUDA=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if [[ -z "${CUDACXX:-}" && -x /usr/local/cuda/bin/nvcc ]] && ! command -v nvcc >/dev/null; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD" -j"${JOBS:-2}"
