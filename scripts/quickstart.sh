#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job on the real stories260K model:
# the machine report, greedy generation from text, and the CPU decode benchmark of that model.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${CTXLAB_SHARED_DIR:-../shared}
bash scripts/install_deps.sh
bash scripts/build.sh
CTX=build/experiments/ctxlab
$CTX doctor
echo
echo "== ctxlab generate --model $SHARED/fixtures/stories260k/stories260K.bin --prompt 'Once upon a time' --max-new-tokens 120"
$CTX generate --model "$SHARED/fixtures/stories260k/stories260K.bin" --prompt "Once upon a time" --max-new-tokens 120
echo
echo "== ctxlab bench decode --model $SHARED/fixtures/stories260k/stories260K.bin --threads 1"
echo "   (a 1 MiB model lives in the CPU caches, so its roofline ratio is low by design; bench/RESULTS.md has the 418 MiB model)"
$CTX bench decode --model "$SHARED/fixtures/stories260k/stories260K.bin" --threads 1 --bandwidth-mib 256
