#!/usr/bin/env bash
# One device call: the GPU engine tests, ctxlab's batch-1 decode against the roofline, and HF
# transformers' generate on the same model shape, all on the same card.
# Here:   BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_decode.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader
echo "== gpu_engine_test"
.device/run gpu_engine_test 2>&1 | grep -E "gpu - transformers|head_dim|agree for|OK|FAILED|Failure|Expected|Which is|error" | head -80
echo "== gpu_attention_test"
.device/run gpu_attention_test --gtest_brief=1 2>&1 | grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped" | head -40
CONTEXT=${CONTEXT:-1024}
NEW=${NEW:-128}
echo "== ctxlab bench gpu-decode (Llama-2-7B shape, random bf16 weights)"
.device/run ctxlab bench gpu-decode --model random:.device/bench_configs/llama2_7b.json --context "$CONTEXT" --tokens "$NEW" --rounds 5
echo "== ctxlab bench gpu-attention (decode attention alone, Llama-2-7B heads)"
.device/run ctxlab bench gpu-attention --context 1024,4096,16384,65536 --splits 0,32,128
echo "== HF transformers generate, same shape"
python3 bench/gpu/hf_decode.py .device/bench_configs/llama2_7b.json "$CONTEXT" "$NEW"
