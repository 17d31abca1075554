#!/usr/bin/env bash
# Fifteenth session, last call: the fused RoPE on paged caches. gpu_engine_test and gpu_attention_test in
# full (GpuFusedRope's paged cases: bit for bit against the separate launch), then the 7B's bf16 and
# q4_0 decode through the `paged` backend (blocks of 16) with the separate and the fused launch.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_engine_test gpu_attention_test
grep -E "GpuFusedRope" "$OUT/gpu_engine_test.txt" | head -12
for q in none q4_0; do
  log="$OUT/paged_$q.txt" start=$SECONDS
  timeout 100 .device/run ctxlab bench gpu-decode --model "$M7" --context 256,1024 --tokens 64 --rounds 2 \
    --copy-mib 512 --no-stages --quant $q --attention paged:block_size=16 --fused-rope 0,1 > "$log" 2>&1
  echo "== 7B $q, paged KV (blocks of 16): exit $? after $((SECONDS - start)) s"
  grep -E "^device|^\| llama|rror" "$log" | sed 's/| llama L=32 d=4096 heads=32\/32 hd=128 ff=11008 vocab=32000 params=6738415616 //; s/, copy bandwidth.*//'
done
