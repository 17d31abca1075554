#!/usr/bin/env bash
# Eighteenth session, second call: main after the deep ring's revert (the classifier's GEMV fuses the
# final RMSNorm in decode; argmax with shuffles and 16-byte loads). gpu_quant_test (GpuArgmax with its
# planted maxima fixed) and gpu_engine_test, then the 7B decode at 256 and 1k, bf16 first and last
# around int8 (classifier int8), q4_0 and q4_0 with its classifier quantized too, and the q4_0 timeline.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "Argmax" "$OUT/gpu_quant_test.txt" | head -5
CONTEXTS=256,1024 decode_7b bf16 60 none
for q in int8:lm_head=true q4_0 q4_0:lm_head=true; do
  CONTEXTS=256,1024 decode_7b "${q//[:=]/_}" 90 "$q"
done
log="$OUT/timeline_q4_0.txt" start=$SECONDS
timeout 70 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant q4_0 > "$log" 2>&1
echo "== timeline 7B q4_0: exit $? after $((SECONDS - start)) s"
grep -E "^ms/token|^\| [a-z_]|rror" "$log" | head -40
CONTEXTS=256,1024 decode_7b bf16_again 60 none
