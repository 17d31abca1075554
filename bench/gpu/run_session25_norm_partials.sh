#!/usr/bin/env bash
# Twenty-fifth session. GpuEngineOptions::norm_partials (off by default until measured; `bench gpu-decode
# --norm-partials both` times it both ways on one engine): o_proj and down_proj leave hidden's sums of
# squares per tile, and the fused RMSNorm of gate_up, qkv and lm_head adds them up instead of summing
# hidden behind block-wide barriers, each lane normalizing its own pieces in registers. Then the
# twenty-fourth session's unrun CTXLAB_QGEMV_DIRECT_X=1 on top, and CTXLAB_QGEMV_WARP_STAGE=1 (down_proj's
# input with 4-bit codes staged by each warp for its own chunks, behind __syncwarp() instead of the
# block's barrier).
# 1. gpu_quant_test and gpu_engine_test whole;
# 2. the 7B at 256 and 1024: q4_0 and int8 (classifier int8) with and without partials, bf16; then, while
#    LIMIT_S leaves time, q4_0 with WARP_STAGE, q4_0 and int8 with DIRECT_X (partials on), nf4
#    codes=bfloat16 both ways, and gpu_quant_test with both switches.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "norm_partials moves" "$OUT/gpu_quant_test.txt"
for q in q4_0 int8:lm_head=true; do decode_7b "${q}_partials" 150 "$q" --norm-partials both; done
decode_7b bf16 80 none
CTXLAB_QGEMV_WARP_STAGE=1 decode_7b q4_0_partials_warp_stage 120 q4_0 --norm-partials on
for q in q4_0 int8:lm_head=true; do CTXLAB_QGEMV_DIRECT_X=1 decode_7b "${q}_partials_direct_x" 120 "$q" --norm-partials on; done
decode_7b nf4_partials 150 nf4:codes=bfloat16 --norm-partials both
mv "$OUT/gpu_quant_test.txt" "$OUT/gpu_quant_test_default.txt"
((SECONDS + 30 < ${LIMIT_S:-570})) && CTXLAB_QGEMV_DIRECT_X=1 CTXLAB_QGEMV_WARP_STAGE=1 run_test_programs gpu_quant_test
