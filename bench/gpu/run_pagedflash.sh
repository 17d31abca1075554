#!/usr/bin/env bash
# One device call (< 120 s) for paged KV on the flash prefill kernels (issue 7's `paged` backend):
#   1. gpu_attention_test, the paged cases (split-KV and every flash / wgmma / tma variant against
#      the float64 reference; block sizes 1..256, the flash cases at 8, 16 and 128)
#   2. gpu_engine_test's GpuPagedPrefill (paged flash prefill within bf16 rounding of contiguous)
#   3. ctxlab bench gpu-prefill-attention at 8k, Llama-2-7B's attention shape (32 heads of 128):
#      contiguous vs paged blocks of 16 and 128, mma.sync / wgmma / tma (tma hands paged to wgmma 64x4)
#   4. TTFT of an 8k prompt on the 8-layer Llama-2-7B shape, contiguous (--kv-block-size 0) vs paged 16
#      (bench/RESULTS.md memdemo: ~720 ms paged vs 135 ms contiguous before this branch)
#   5. the rest of gpu_engine_test (every paged-vs-contiguous engine test) with the time left
# Full logs in $OUT; a short summary on stdout.
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_pagedflash.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

echo "== 1. gpu_attention_test, paged cases"
start=$SECONDS
timeout 30 .device/run gpu_attention_test --gtest_brief=1 \
  --gtest_filter='*GpuAttention.*paged*:*GpuAttentionWgmma.*paged*' > "$OUT/gpu_attention_paged.txt" 2>&1
echo "exit $? after $((SECONDS - start)) s"; summary "$OUT/gpu_attention_paged.txt" 20
paged_flash_worst "$OUT/gpu_attention_paged.txt"

echo "== 2. gpu_engine_test GpuPagedPrefill"
start=$SECONDS
timeout 20 .device/run gpu_engine_test --gtest_filter='*GpuPagedPrefill*' > "$OUT/gpu_engine_paged_prefill.txt" 2>&1
echo "exit $? after $((SECONDS - start)) s"; summary "$OUT/gpu_engine_paged_prefill.txt"
grep -E "^head_dim" "$OUT/gpu_engine_paged_prefill.txt"

paged_prefill_timings  # 3. and 4.

left=$((115 - SECONDS))
echo "== 5. gpu_engine_test (the rest), ${left} s left"
if (( left > 5 )); then
  start=$SECONDS
  timeout $left .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='-*GpuPagedPrefill*' \
    > "$OUT/gpu_engine_test.txt" 2>&1
  echo "exit $? after $((SECONDS - start)) s"; summary "$OUT/gpu_engine_test.txt" 20
fi
