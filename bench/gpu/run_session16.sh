#!/usr/bin/env bash
# Sixteenth session (2026-12-07): the quantized decode GEMVs' even split of rounds over blocks
# (GpuEngineOptions::gemv_split, kernels/quant_kernels.h GemvSplitSlots). Measured slower and reverted:
# the code is commit 7efc8b0 (`git checkout 7efc8b0` before bundling; main has no --gemv-split). gpu_quant_test and
# gpu_engine_test, then the 7B's batch-1 decode with the split on and off on one engine per format
# (--gemv-split both), with the GEMV table (each matrix both ways) and the layer table. PARTS: decode
# (the default: bf16, int8, q4_0, nf4 codes=bfloat16 at 256 and 1024), ff (q4_0 GEMVs of the 8-layer
# shape at three intermediate sizes), 7b (bf16, q4_0 and int8 at 256); TESTS=0 skips the tests.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
[[ "${TESTS:-1}" == 1 ]] && run_test_programs gpu_quant_test gpu_engine_test
for part in ${PARTS:-decode}; do
  case $part in
    decode)
      decode_7b bf16 60 none
      decode_7b int8 120 int8:lm_head=true --gemv-split both
      decode_7b q4_0 140 q4_0 --gemv-split both
      decode_7b "nf4 codes=bfloat16" 140 nf4:codes=bfloat16 --gemv-split both ;;
    ff) for ff in 10560 11008 12672; do ff_decode q4_0 $ff --gemv-split both; done ;;
    7b) CONTEXTS=256 decode_7b bf16 60 none
        CONTEXTS=256 decode_7b q4_0 140 q4_0 --gemv-split both
        CONTEXTS=256 decode_7b int8 120 int8:lm_head=true --gemv-split both ;;
  esac
done
