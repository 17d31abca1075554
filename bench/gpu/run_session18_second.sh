#!/usr/bin/env bash
# Eighteenth session, second call: main after the deep ring's revert (the classifier's GEMV fuses the
# final RMSNorm in decode; argmax with shuffles and 16-byte loads). gpu_quant_test (GpuArgmax with its
# planted maxima fixed) and gpu_engine_test, then the 7B decode at 256, bf16 first and last around int8
# (classifier int8), q4_0 and q4_0 with its classifier quantized too.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "Argmax" "$OUT/gpu_quant_test.txt" | head -5
CONTEXTS=256 decode_7b bf16 50 none
for q in int8:lm_head=true q4_0 q4_0:lm_head=true; do
  CONTEXTS=256 decode_7b "${q//[:=]/_}" 70 "$q"
done
CONTEXTS=256 decode_7b bf16_again 50 none
