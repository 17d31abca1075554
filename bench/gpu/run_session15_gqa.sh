#!/usr/bin/env bash
# Fifteenth session, last call: the fused RoPE on the tensor-core (GQA) decode attention pass, whose K/V
# loads then go through L2 (kCoherent). All three GPU test programs (GpuFusedRope: GQA with 4 and 8 query
# heads per KV head, paged too, bit for bit against the separate launch), then TinyLlama-1.1B's shape
# (32 query heads on 4 KV heads) with the separate and the fused launch, bf16 and q4_0.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_engine_test gpu_quant_test gpu_attention_test
for q in none q4_0; do
  for attn in sdpa paged:block_size=16; do
    log="$OUT/tinyllama_${q}_${attn//[:=]/_}.txt" start=$SECONDS
    timeout 60 .device/run ctxlab bench gpu-decode --model random:.device/bench_configs/llama_1b.json --context 256,1024 \
      --tokens 64 --rounds 3 --copy-mib 512 --no-stages --quant $q --attention $attn --fused-rope 0,2 > "$log" 2>&1
    echo "== TinyLlama-1.1B shape, $q, $attn: exit $? after $((SECONDS - start)) s"
    grep -E "^\| llama|rror" "$log" | sed 's/| llama [^|]* //'
  done
done
