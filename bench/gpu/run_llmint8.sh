#!/usr/bin/env bash
# One short device call (< 90 s) for llm_int8 on the GPU (issue 8: LLM.int8()'s input decomposition
# on the device, core/cuda/kernels/int8_activations.cuh): the llm_int8 tests of gpu_quant_test first
# (so that their result lands even if the rest runs out of time), then the whole gpu_quant_test, then
# ctxlab's batch-1 decode of Llama-2-7B's layer shape with 8 layers (random weights) with llm_int8 and
# with int8 (the same packed bytes without the decomposition) on the same card: ms/token, the
# roofline ratio and the per-matrix GEMV table. Full logs under $OUT.
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_llmint8.sh   (run tool, carry the bundle as .device, kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
M8=random:.device/bench_configs/llama2_7b_8layers.json
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
echo "== gpu_quant_test, llm_int8 only"
start=$SECONDS
timeout 20 .device/run gpu_quant_test --gtest_filter='*llm_int8*:*LlmInt8*' > "$OUT/gpu_quant_test_llm_int8.log" 2>&1
echo "rc $? after $((SECONDS - start)) s"
grep -E "outlier columns|prefill: worst|gpu - cpu|decode vs prefill|agree for|first difference|weights .* bytes|Failure|Expected|Which is|FAILED|PASSED" \
  "$OUT/gpu_quant_test_llm_int8.log" | head -60
echo "== gpu_quant_test (all)"
start=$SECONDS
timeout 35 .device/run gpu_quant_test --gtest_brief=1 > "$OUT/gpu_quant_test.log" 2>&1
echo "rc $? after $((SECONDS - start)) s"
grep -E "FAILED|Failure|PASSED|tests ran" "$OUT/gpu_quant_test.log" | head -20
for q in llm_int8 int8; do
  echo "== ctxlab bench gpu-decode --quant $q (8-layer 7B shape, 1k)"
  start=$SECONDS
  timeout 15 .device/run ctxlab bench gpu-decode --model $M8 --context 1024 --tokens 32 --rounds 1 --copy-mib 512 \
    --no-stages --quant $q > "$OUT/decode_$q.log" 2>&1
  echo "rc $? after $((SECONDS - start)) s"
  grep -E "^\||^device|GEMV|rror" "$OUT/decode_$q.log" | head -20
done
