#!/usr/bin/env bash
# Sixteenth session (2026-12-07): the GEMVs' L1 prefetches of the RMSNorm weight, biases, int8 row
# scales and accumulated residual rows (gemv_common.cuh gemv_prefetch) against the same binary without
# them (CTXLAB_GEMV_PREFETCH=0), one process each: gpu_quant_test and gpu_engine_test, then the 7B's
# decode at 256 with bf16, int8 (classifier int8), q4_0 and nf4 codes=bfloat16, off and on in turn.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[[ "${TESTS:-1}" == 1 ]] && run_test_programs gpu_quant_test gpu_engine_test
for q in none int8:lm_head=true q4_0 nf4:codes=bfloat16; do
  for on in 0 1; do
    CONTEXTS=256 CTXLAB_GEMV_PREFETCH=$on decode_7b "${q%%:*} prefetch $on" 100 "$q"
  done
done
