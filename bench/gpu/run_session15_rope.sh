#!/usr/bin/env bash
# Fifteenth session: RoPE and the KV write fused into the decode attention launch (AttentionParams::rope,
# GpuEngineOptions::fused_rope). The 7B at 256 and 1024 with the separate launch and the fused one in
# one process per format (--fused-rope 0,1), then the test programs in full (gpu_engine_test's
# GpuFusedRope cases check the fused launch bit for bit against the separate one).
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
limit=${LIMIT_S:-570}
decode() {
  local q=$1 limit_s=$2
  ((SECONDS + 30 < limit)) || { echo "(no time for $q at $SECONDS s)"; return; }
  local log="$OUT/d7b_${q//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" .device/run ctxlab bench gpu-decode --model "$M7" --context 256,1024 --tokens 64 \
    --rounds 2 --copy-mib 512 --no-stages --quant "$q" --fused-rope 0,1 > "$log" 2>&1
  echo "== 7B $q: exit $? after $((SECONDS - start)) s"
  grep -E "^\| llama|rror" "$log" | sed 's/| llama L=32 d=4096 heads=32\/32 hd=128 ff=11008 vocab=32000 params=6738415616 //'
}
decode none 60
decode int8:lm_head=true 80
decode q4_0 100
decode nf4:codes=bfloat16 100
run_test_programs gpu_engine_test gpu_attention_test gpu_quant_test
grep -E "GpuFusedRope" "$OUT/gpu_engine_test.txt" | grep -E "OK|FAILED" | head -10
