#!/usr/bin/env bash
# Fourteenth session, second call: the GEMV chain's tests with shapes every format takes (1056
# columns), both barrier kinds, three rings, the engine through the chain (a random 1024-wide Llama);
# and where the chain loses against four launches (first call: 0.82-0.93x per layer): the layer
# table adds a 144 KiB ring, the counting barrier and each GEMV as a one-stage chain (the chain
# kernel without barriers). The 7B at context 256 with the chain off and on, then with the counting
# barrier.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== gpu_quant_test *Chain*"
timeout 90 .device/run gpu_quant_test --gtest_brief=1 --gtest_filter='*Chain*' > "$OUT/chain_test.txt" 2>&1
echo "rc $?"
summary "$OUT/chain_test.txt" 30
echo "== gpu_quant_test *ChainEngine* with the counting barrier"
CTXLAB_QGEMV_CHAIN_BARRIER=counting timeout 60 .device/run gpu_quant_test --gtest_brief=1 --gtest_filter='*ChainEngine*' \
  > "$OUT/model_counting.txt" 2>&1
echo "rc $?"
summary "$OUT/model_counting.txt" 30
decode() {
  local label=$1 limit_s=$2 q=$3
  shift 3
  local log="$OUT/d7b_${label//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" .device/run ctxlab bench gpu-decode --model "$M7" --context 256 --tokens 64 --rounds 2 \
    --copy-mib 512 --no-stages --quant "$q" "$@" > "$log" 2>&1
  echo "== 7B $label: exit $? after $((SECONDS - start)) s"
  grep -E "^\| llama|^\| [a-z_]+ \[|^\| (four|one)|rror" "$log" | sed 's/| llama L=32 d=4096 heads=32.32 hd=128 ff=11008 vocab=32000 params=6738415616//'
}
decode bf16 60 none
decode q4_0 110 q4_0 --gemv-chain both
CTXLAB_QGEMV_CHAIN_BARRIER=counting decode "q4_0 counting" 100 q4_0 --gemv-chain on
decode int8 80 int8 --gemv-chain both
decode "nf4 codes=bfloat16" 110 nf4:codes=bfloat16 --gemv-chain both
