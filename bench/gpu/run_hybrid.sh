#!/usr/bin/env bash
# One device call (about 5 minutes): the hybrid GPU tests (the Mamba-2 mixer against the CPU mixer,
# the engine against transformers' granite_hybrid logits, prefill-then-decode), ctxlab bench
# gpu-decode on a Granite-4.0-H-1B-shaped random model over contexts 128..32k (an engine per context,
# so that the memory columns are that context's), and HF transformers' generate on the same shape
# (torch fallback path), all on the same card.
# Here:   BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_mamba2_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_hybrid.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader
CONTEXTS=${CONTEXTS:-128,512,2048,8192,32768}
NEW=${NEW:-64}
CONFIG=.device/bench_configs/granite_4_0_h_1b.json
echo "== gpu_mamba2_test"
timeout 60 .device/run gpu_mamba2_test 2>&1 | grep -E "output rel|OK \]|FAILED|Failure|Expected|Which is|error|PASSED|SKIPPED" | head -100
echo "== gpu_engine_test"
timeout 90 .device/run gpu_engine_test 2>&1 | grep -E "gpu - transformers|hybrid|agree for|first difference|OK \]|FAILED|Failure|Expected|Which is|error|PASSED" | head -80
echo "== ctxlab bench gpu-decode (Granite-4.0-H-1B shape, random bf16 weights)"
timeout 180 .device/run ctxlab bench gpu-decode --model "random:$CONFIG" --context "$CONTEXTS" --tokens "$NEW" --rounds 3 \
  --engine-per-context
echo "== the same with paged KV for the attention layers (block 16)"
timeout 180 .device/run ctxlab bench gpu-decode --model "random:$CONFIG" --context "$CONTEXTS" --tokens "$NEW" --rounds 3 \
  --engine-per-context --kv-block-size 16 | grep -E "^\| granite|^device"
echo "== HF transformers generate (torch fallback), same shape"
timeout 140 python3 bench/gpu/hf_hybrid.py "$CONFIG" "$CONTEXTS" 32
