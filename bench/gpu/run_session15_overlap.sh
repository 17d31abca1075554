#!/usr/bin/env bash
# Fifteenth session: the overlapped launch of the quantized decode GEMVs (half-SM blocks, one per SM,
# so that the next GEMV's blocks copy their first weights beside them; kernels/quant_kernels.h
# set_quant_gemv_overlap). gpu_quant_test's chain cases first (they check the overlapped launch bit for
# bit against the default, per layer and per engine), then the 7B at 256 with the layer table,
# default and overlapped in one process per format (--gemv-overlap both).
# It runs at commit 09a1462, where the option existed (reverted after these timings: slower).
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
limit=${LIMIT_S:-570}
echo "== gpu_quant_test *Chain*"
timeout 120 .device/run gpu_quant_test --gtest_brief=1 --gtest_filter='*Chain*' > "$OUT/chain_test.txt" 2>&1
echo "rc $?"
summary "$OUT/chain_test.txt" 30
decode() {
  local q=$1 limit_s=$2
  ((SECONDS + 30 < limit)) || { echo "(no time for $q at $SECONDS s)"; return; }
  local log="$OUT/d7b_${q//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" .device/run ctxlab bench gpu-decode --model "$M7" --context "${CONTEXTS:-256,1024}" --tokens 64 \
    --rounds 2 --copy-mib 512 --no-stages --quant "$q" --gemv-overlap both > "$log" 2>&1
  echo "== 7B $q: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^\| llama|^\| [a-z_]+ \[|^\| four|rror" "$log" | sed 's/, copy bandwidth.*//'
}
decode int8 100
decode q4_0 120
decode nf4:codes=bfloat16 120
