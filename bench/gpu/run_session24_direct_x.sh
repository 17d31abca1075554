#!/usr/bin/env bash
# Written in the twenty-fourth session, not run (its device time ran out). CTXLAB_QGEMV_DIRECT_X=1 (off
# by default, same binary): the single-row quantized GEMVs that hold an input given as is (o_proj's)
# in registers load each lane's pieces straight from global memory instead of staging the input in
# shared memory behind a barrier (direct_input; the second call's fp16 input showed the work after
# pdl_wait on the critical path).
# 1. gpu_quant_test and gpu_engine_test whole;
# 2. the 7B at 256 and 1024, q4_0 and int8 (classifier int8), direct and staged; then, while LIMIT_S
#    leaves time, bf16, gpu_quant_test with the input staged, and the direct runs again.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
CTXLAB_QGEMV_DIRECT_X=1 run_test_programs gpu_quant_test gpu_engine_test
for q in q4_0 int8:lm_head=true; do
  CTXLAB_QGEMV_DIRECT_X=1 decode_7b "${q}_direct" 120 "$q"
  decode_7b "${q}_staged" 120 "$q"
done
# As LIMIT_S leaves time: bf16 for the ratios, the tests with the input staged, the repeats.
decode_7b bf16 80 none
mv "$OUT/gpu_quant_test.txt" "$OUT/gpu_quant_test_direct.txt"
((SECONDS + 30 < ${LIMIT_S:-570})) && run_test_programs gpu_quant_test
for q in q4_0 int8:lm_head=true; do CTXLAB_QGEMV_DIRECT_X=1 decode_7b "${q}_direct_again" 120 "$q"; done
