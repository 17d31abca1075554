#!/usr/bin/env bash
# Fifteenth session: GpuEngineOptions::fused_rope as a mode (0 never, 1 the CUDA-core passes, 2 the
# tensor-core GQA pass too; 1 was the default in this call, 2 after it). The three GPU test programs, then TinyLlama-1.1B's GQA
# shape and the 7B's MHA shape with each mode in one process (--fused-rope 0,1,2).
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_engine_test gpu_quant_test gpu_attention_test
for q in none q4_0; do
  log="$OUT/tinyllama_$q.txt" start=$SECONDS
  timeout 60 .device/run ctxlab bench gpu-decode --model random:.device/bench_configs/llama_1b.json --context 256,1024 \
    --tokens 64 --rounds 3 --copy-mib 512 --no-stages --quant $q --fused-rope 0,1,2 > "$log" 2>&1
  echo "== TinyLlama-1.1B shape, $q: exit $? after $((SECONDS - start)) s"
  grep -E "^\| llama|rror" "$log" | sed 's/| llama [^|]* //'
done
log="$OUT/d7b_q4_0.txt" start=$SECONDS
timeout 90 .device/run ctxlab bench gpu-decode --model "$M7" --context 256,1024 --tokens 64 --rounds 2 --copy-mib 512 \
  --no-stages --quant q4_0 --fused-rope 0,1 > "$log" 2>&1
echo "== 7B q4_0: exit $? after $((SECONDS - start)) s"
grep -E "^\| llama|rror" "$log" | sed 's/| llama [^|]* //'
