#!/usr/bin/env bash
# The quantized decode GEMVs asking L2 for more of each block's weights before pdl_wait
# (set_gemv_l2_prefetch_chunks, `bench gpu-decode --gemv-l2-chunks`): gpu_quant_test (its
# GpuQuantL2Prefetch cases check the outputs bit for bit with and without), then the 7B decode at 256 and
# 1k (bf16 first, for the speed-ups) with 0, 16, 32, 64, 128 and every chunk (1048576) per block, one engine per format, 0 again last.
# It runs at commit f910db7, where the option existed (reverted after these timings: no faster at 16
# chunks, slower above; bench/RESULTS.md, twentieth session). There gpu_quant_test aborts at its
# EXPECT_THROW(set_gemv_l2_prefetch_chunks(-1)): the setter checked with CTX_CHECK, which aborts.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test
grep -E "L2Prefetch" "$OUT/gpu_quant_test.txt" | head -12
decode_7b bf16 60 none
for q in q4_0 "int8:lm_head=true" "nf4:codes=bfloat16"; do
  decode_7b "l2_$q" 120 "$q" --gemv-l2-chunks 0,16,32,64,128,1048576,0
done
