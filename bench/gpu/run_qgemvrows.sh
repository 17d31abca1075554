#!/usr/bin/env bash
# Batched quantized GEMV (branch qgemvrows, sixth 2026-12-06 session), one short call (< 110 s):
#  1. gpu_quant_test's GpuQuantRows (each of n = 2, 5, 8 rows bit for bit the single-row GEMV, plain and
#     SwiGLU, every format), the refusals, GpuQuantModel (chunks of 8 through the batched GEMV vs the
#     prefill path); gpu_engine_test's batched cases (GpuKiviBatch, GpuBatch);
#  2. ctxlab bench gpu-batch on the 8-layer 7B shape, int8 weights, 1k context, batches 1, 2, 4, 8: the
#     batched GEMV, then CTXLAB_QGEMV_ROWS=0 (main's dequantize + cuBLAS path), then bf16 weights.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
timeout 40 .device/run gpu_quant_test --gtest_brief=1 --gtest_filter='*GpuQuantRows*:*GpuQuantModel*' > "$OUT/q.txt" 2>&1
echo "== gpu_quant_test rc $?"; summary "$OUT/q.txt" 8; grep -E "chunks of 8" "$OUT/q.txt" | sort -k9 -g | tail -2
timeout 25 .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='*GpuKiviBatch*:GpuBatch*' > "$OUT/e.txt" 2>&1
echo "== gpu_engine_test rc $?"; summary "$OUT/e.txt" 8; grep -E "kivi batch" "$OUT/e.txt" | awk '{print $(NF-4)}' | sort -g | head -1
batch() {  # $1: label, then flags
  local label=$1; shift
  timeout 25 .device/run ctxlab bench gpu-batch --model $M8 --context 1024 --batch 1,2,4,8 --tokens 16 --rounds 1 \
    --kv-block-size 0 --copy-mib 256 "$@" > "$OUT/b.txt" 2>&1
  echo "== $label rc $?"; grep -E "^\| 1024" "$OUT/b.txt" | cut -d'|' -f2,3,7,8,10
}
batch "int8, batched GEMV" --quant int8
CTXLAB_QGEMV_ROWS=0 batch "int8, dequantize + GEMM" --quant int8
batch "bf16" --quant none
