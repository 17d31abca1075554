#!/usr/bin/env bash
# Fourteenth session (2026-12-07), first call: the GEMV chain (a layer's o_proj, norm + gate_up +
# SwiGLU, down_proj and the next norm + qkv as one persistent kernel, kernels/quant_gemv_chain.cu).
# 1. gpu_quant_test's chain cases first (each stage bit for bit its own launch, both rings), then
#    gpu_quant_test and gpu_engine_test in full (the engine decodes through the chain by default).
# 2. The 7B's batch-1 decode at contexts 256 and 1024 with the chain off and on in one process per
#    format (--gemv-chain both), each with the per-matrix GEMV table and the layer table (four
#    launches against the chain with a 48 and a 96 KiB ring).
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
limit=${LIMIT_S:-570}
echo "== gpu_quant_test *Chain*"
timeout 90 .device/run gpu_quant_test --gtest_brief=1 --gtest_filter='*Chain*' > "$OUT/chain_test.txt" 2>&1
rc=$?
echo "rc $rc"
summary "$OUT/chain_test.txt" 30
chain=both
((rc == 124)) && chain=off  # a hang: no chain in the decodes either
run_test_programs gpu_quant_test gpu_engine_test
# decode LABEL TIMEOUT QUANT [FLAGS...]: the 7B's batch-1 decode at 256 and 1024.
decode() {
  local label=$1 limit_s=$2 q=$3
  shift 3
  ((SECONDS + 30 < limit)) || { echo "(no time for $label at $SECONDS s)"; return; }
  local log="$OUT/d7b_${label//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" .device/run ctxlab bench gpu-decode --model "$M7" --context 256,1024 --tokens 64 --rounds 2 \
    --copy-mib 512 --no-stages --quant "$q" --gemv-chain "$chain" "$@" > "$log" 2>&1
  echo "== 7B $label: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^\| llama|^\| [a-z_]+ \[|^\| (four|one)|rror" "$log" | sed 's/, copy bandwidth.*//'
}
decode q4_0 110 q4_0
decode int8 80 int8
decode "nf4 codes=bfloat16" 110 nf4:codes=bfloat16
decode nf4 110 nf4
