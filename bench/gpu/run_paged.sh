#!/usr/bin/env bash
# One device call: the attention conformance test (contiguous, paged and batched decode against a
# float64 reference), then decode attention timings: paged block sizes vs contiguous, batches of
# mixed lengths, MHA and GQA at long context, split counts.
# Here:   BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_paged.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_attention_test"
.device/run gpu_attention_test --gtest_brief=1 2>&1 | grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped|error" | head -40
if [[ -x .device/bin/gpu_engine_test ]]; then
  echo "== gpu_engine_test"
  .device/run gpu_engine_test --gtest_brief=1 2>&1 | grep -E "FAILED|Failure|Expected|Which is|PASSED|error" | head -20
fi
echo "== decode attention, batch 1, split counts (MHA 32 heads, GQA 32q/8kv)"
.device/run ctxlab bench gpu-attention --context 4096,16384,32768 --splits 0,16,32,64,128
.device/run ctxlab bench gpu-attention --kv-heads 8 --context 4096,16384,32768 --splits 0,16,32,64,128,256
echo "== decode attention, batch 1: paged block sizes vs contiguous"
.device/run ctxlab bench gpu-attention --context 1024,4096,16384,32768 --block-size 0,8,16,32,64,128
.device/run ctxlab bench gpu-attention --kv-heads 8 --context 4096,32768 --block-size 0,8,16,128
echo "== batched decode of mixed lengths (context = the longest), contiguous static regions vs paged"
.device/run ctxlab bench gpu-attention --context 1024,4096,16384 --batch 8,32 --block-size 0,8,16,128
.device/run ctxlab bench gpu-attention --kv-heads 8 --context 4096 --batch 8,32 --block-size 0,16
