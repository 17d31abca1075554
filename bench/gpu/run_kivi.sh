#!/usr/bin/env bash
# One device call (< 3 min): the attention conformance test (bf16 kernel after the refactor into
# attention_pass.cuh, KIVI quantize kernels against the CPU, the fused KIVI decode kernel against a
# float64 reference), then decode attention with KIVI int4/int8 KV against bf16 at the same context
# (batch 1, MHA 32 heads and GQA 32q/8kv, head_dim 128; issue 8's target: int4 <= 0.4x of bf16 at 32k);
# where gpu_engine_test is bundled, also the engine with kv_quant against the CPU engine.
# Here:   BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_kivi.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_attention_test (bf16 and KIVI)"
.device/run gpu_attention_test --gtest_brief=1 2>&1 | grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped|error|worst" | head -60
echo "== worst KIVI deviations (max |gpu - ref| / max|ref|)"
.device/run gpu_attention_test --gtest_filter='*Kivi*' 2>&1 | grep -E "max \|gpu" | sort -g -k 10 | tail -5
if [[ -x .device/bin/gpu_engine_test ]]; then
  echo "== gpu_engine_test: KIVI engine vs the CPU engine with the same kv_quant"
  .device/run gpu_engine_test --gtest_filter='*Kivi*' 2>&1 | grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped|error|kv_quant" | head -40
fi
echo "== decode attention, batch 1: bf16 vs KIVI int4/int8 (group 32, residual 128), MHA 32 heads"
.device/run ctxlab bench gpu-attention --context 1024,4096,16384,32768 --kivi-bits 4,8
echo "== GQA 32q/8kv (4 query heads per block), and 2 per block"
.device/run ctxlab bench gpu-attention --kv-heads 8 --context 1024,4096,16384,32768 --kivi-bits 4,8
.device/run ctxlab bench gpu-attention --kv-heads 8 --group 2 --context 4096,32768 --kivi-bits 4,8
echo "== split counts at 32k (MHA), int2 (generic path) and group 128"
.device/run ctxlab bench gpu-attention --context 32768 --splits 0,32,128 --kivi-bits 4,8
.device/run ctxlab bench gpu-attention --context 32768 --kivi-bits 2,4 --kivi-group 128
