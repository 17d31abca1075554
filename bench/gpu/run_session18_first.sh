#!/usr/bin/env bash
# Eighteenth session, first call: the quantized GEMV's deep ring (quant_kernels.h quant_gemv_takes_deep_ring:
# o_proj copies its whole matrix before pdl_wait, while decode attention runs), CTXLAB_QGEMV_DEEP=1 / 0
# alternating in one call: gpu_quant_test (GpuQuantDeepRing: bit for bit against the default ring;
# GpuArgmax: the argmax kernel with shuffles and 16-byte loads) and gpu_engine_test (the classifier's
# GEMV now fuses the final RMSNorm in decode), the q4_0 kernel timeline, then the 7B decode at 256 and 1k with decode
# attention's key prefetch off and on (`--attention-prefetch 0,1`, the seventeenth session's unrun third
# call): bf16, q4_0, int8 (classifier int8), q4_0 and nf4 codes=bfloat16 with the classifier quantized
# too (as gpt-fast and llama.cpp quantize it); q4_0 with every kernel preferring the most shared
# memory (CTXLAB_SMEM_CARVEOUT=100: an SM changes its split only when drained, so o_proj's larger ring
# may otherwise wait for attention's blocks to leave).
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "DeepRing|Argmax" "$OUT/gpu_quant_test.txt" | head -20
log="$OUT/timeline_q4_0.txt" start=$SECONDS
timeout 90 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant q4_0 > "$log" 2>&1
echo "== timeline 7B q4_0 (deep ring on): exit $? after $((SECONDS - start)) s"
grep -E "^ms/token|^\| [a-z_]|rror" "$log" | head -40
CONTEXTS=256,1024 decode_7b bf16 90 none --attention-prefetch 0,1
for q in q4_0 int8:lm_head=true; do
  for deep in 1 0; do
    CTXLAB_QGEMV_DEEP=$deep CONTEXTS=256,1024 decode_7b "${q%%:*}_deep$deep" 100 "$q" --attention-prefetch 0,1
  done
done
CTXLAB_SMEM_CARVEOUT=100 CONTEXTS=256,1024 decode_7b q4_0_carveout100 100 q4_0 --attention-prefetch 0,1
CONTEXTS=256,1024 decode_7b q4_0_lm_head 100 q4_0:lm_head=true --attention-prefetch 0,1
CONTEXTS=256,1024 decode_7b nf4_lm_head 100 nf4:codes=bfloat16,lm_head=true --attention-prefetch 0,1
CONTEXTS=256 decode_7b bf16_again 60 none --attention-prefetch 0,1
