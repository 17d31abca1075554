#!/usr/bin/env bash
# Twenty-fourth session, call 1, run at 56b7055. CTXLAB_QGEMV_NEXT_BLOCK=1 (ff5972b, reverted after
# this call: q4_0 2.087 -> 2.933 ms at 256 keys; check out ff5972b to run it again) launched the
# quantized single-row GEMVs one block per SM, the 16-warp kernels at 64 registers, to leave each SM
# room for a block of the next launch while a GEMV runs.
# 1. the three GPU test programs whole (56b7055, the attention clean-up, had not run on a GPU), and
#    gpu_quant_test again with the switch (the capped kernels against the CPU plugins);
# 2. the 7B at 256 and 1024: bf16, q4_0 default and NEXT_BLOCK=1 (the fifteenth session's overlapped
#    launch, the same idea, was much slower: two blocks of one GEMV shared an SM; this checks whether
#    that happens again), int8 (classifier int8) and nf4 codes=bfloat16 default for the ratios.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_attention_test gpu_engine_test gpu_quant_test
mv "$OUT/gpu_quant_test.txt" "$OUT/gpu_quant_test_default.txt"
CTXLAB_QGEMV_NEXT_BLOCK=1 run_test_programs gpu_quant_test
decode_7b bf16 80 none
decode_7b q4_0 150 q4_0
CTXLAB_QGEMV_NEXT_BLOCK=1 decode_7b q4_0_next_block 150 q4_0
decode_7b int8 150 int8:lm_head=true
decode_7b nf4 150 nf4:codes=bfloat16
