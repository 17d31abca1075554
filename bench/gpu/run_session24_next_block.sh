#!/usr/bin/env bash
# For the next session (written in the twenty-third, not run yet): room on each SM for a block of the next
# launch while a quantized GEMV runs (CTXLAB_QGEMV_NEXT_BLOCK=1: one block per SM, the 16-warp kernels
# at 64 registers; quant_gemv_kernels.cu room_for_next_block). The twenty-third session found bf16
# 5-7% faster once its qkv GEMV left room for an attention block; the quantized GEMVs (512 threads,
# 96 registers) leave room for attention but not for the next GEMV.
# 1. gpu_quant_test with the switch (the capped kernels against the CPU plugins);
# 2. the 7B at 256 and 1024: q4_0 and int8 (classifier int8) default, NEXT_BLOCK=1, WARPS=8, both;
#    bf16 in the same call for the ratios.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
CTXLAB_QGEMV_NEXT_BLOCK=1 run_test_programs gpu_quant_test
decode_7b bf16 80 none
for q in q4_0 int8:lm_head=true; do
  decode_7b "$q" 150 "$q"
  CTXLAB_QGEMV_NEXT_BLOCK=1 decode_7b "${q}_next_block" 150 "$q"
  CTXLAB_QGEMV_WARPS=8 decode_7b "${q}_warps8" 150 "$q"
  CTXLAB_QGEMV_WARPS=8 CTXLAB_QGEMV_NEXT_BLOCK=1 decode_7b "${q}_warps8_next_block" 150 "$q"
done
