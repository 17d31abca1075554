#!/usr/bin/env bash
# What the sixth 2026-12-06 session built after its device time was spent (branch kiviprefill, which
# holds qgemvrows): one call (< 300 s) before merging either.
#  1. bench/gpu/run_qgemvrows.sh: the batched quantized GEMV (tests bit for bit, gpu-batch int8 vs the
#     GEMM path vs bf16);
#  2. gpu_engine_test's KIVI cases, FlashPrefillOverTheExpandedLayer among them (KIVI prompt chunks
#     through the flash kernels over the layer expanded to bf16, vs the CPU engine and vs split-KV);
#  3. the memory demo's two KIVI settings on the 8-layer shape at 16k and 32k (TTFT and peak: the fifth
#     session measured 1.80 s / 3.736 GiB and 5.93 s / 4.573 GiB with the split-KV prefill).
# Here: BUILD=build BUNDLE_DATASETS=1 BUNDLE_TESTS="gpu_quant_test gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
bash bench/gpu/run_qgemvrows.sh
timeout 60 .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='*Kivi*' > "$OUT/kivi.txt" 2>&1
echo "== gpu_engine_test *Kivi* rc $?"; summary "$OUT/kivi.txt" 8; grep -E "chunks of 64|flash vs split" "$OUT/kivi.txt"
SETTINGS="l2norm_kivi8_int8w kivi8_int8w" CONTEXTS=16384,32768 ATTN_TIMEOUT=1 RUN_TIMEOUT=120 bash bench/gpu/run_kivicompress.sh
