#!/usr/bin/env bash
# Twenty-fourth session, call 2, run at 0704927 (reverted in the next commit: int8 decoded at 2.971 /
# 3.146 ms with the fp16 input against 2.948 / 3.123 without; check out 0704927 to run it again): the
# int8-code GEMVs that hold their input in registers take it as fp16
# (a power of two per warp) and their codes as fp16 fragments (Int8Codes::fragment_half: 2 instructions
# per 2 weights against 5.5 for the bf16 fragments). CTXLAB_QGEMV_HALF_INPUT=0 runs the bf16 fragments
# in the same binary.
# 1. gpu_quant_test whole with the fp16 input (the default) and without it; gpu_engine_test whole;
# 2. the 7B at 256 and 1024: bf16, then int8 (classifier int8) fp16 input / bf16 / fp16 input again.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "input x|int8 \[|q8_0 \[" "$OUT/gpu_quant_test.txt" | head -20
mv "$OUT/gpu_quant_test.txt" "$OUT/gpu_quant_test_half.txt"
CTXLAB_QGEMV_HALF_INPUT=0 run_test_programs gpu_quant_test
decode_7b bf16 80 none
decode_7b int8_half 120 int8:lm_head=true
CTXLAB_QGEMV_HALF_INPUT=0 decode_7b int8_bf16 120 int8:lm_head=true
decode_7b int8_half_again 120 int8:lm_head=true
