#!/usr/bin/env bash
# Sixteenth session (2026-12-07): the quantized decode GEMVs' even split of rounds over blocks
# (GpuEngineOptions::gemv_split, kernels/quant_kernels.h GemvSplitSlots). Measured slower and reverted:
# the code is commit 7efc8b0 (`git checkout 7efc8b0` before bundling; main has no --gemv-split). gpu_quant_test and
# gpu_engine_test, then the 7B's batch-1 decode with the split on and off on one engine per format
# (--gemv-split both), with the GEMV table (each matrix both ways) and the layer table. PARTS: decode
# (the default: bf16, int8, q4_0, nf4 codes=bfloat16 at 256 and 1024), ff (q4_0 GEMVs of the 8-layer
# shape at three intermediate sizes), 7b (bf16, q4_0 and int8 at 256); TESTS=0 skips the tests.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
limit=${LIMIT_S:-570}
[[ "${TESTS:-1}" == 1 ]] && run_test_programs gpu_quant_test gpu_engine_test
# decode LABEL TIMEOUT QUANT [FLAGS...]: the 7B's batch-1 decode.
decode() {
  local label=$1 limit_s=$2 q=$3
  shift 3
  ((SECONDS + 30 < limit)) || { echo "(no time for $label at $SECONDS s)"; return; }
  local log="$OUT/d7b_${label//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" .device/run ctxlab bench gpu-decode --model "$M7" --context "${CONTEXTS:-256,1024}" --tokens 64 \
    --rounds 2 --copy-mib 512 --no-stages --quant "$q" "$@" > "$log" 2>&1
  echo "== ctxlab 7B $label: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^\| (llama|q_proj|o_proj|gate_proj|down_proj|lm_head|four|one)|rror" "$log" | sed 's/, copy bandwidth.*//'
}
# ff_tables QUANT FF...: the GEMV and layer tables of the 8-layer shape with intermediate size FF (the
# plain gate_proj GEMV has FF / 16 tiles: 10560 gives 5 per block of 132, 12672 gives 6, 11008 5.2).
ff_tables() {
  local q=$1 ff
  shift
  for ff in "$@"; do
    ((SECONDS + 30 < limit)) || { echo "(no time for ff $ff at $SECONDS s)"; return; }
    sed "s/\"intermediate_size\": 11008/\"intermediate_size\": $ff/" .device/bench_configs/llama2_7b_8layers.json > "$OUT/ff$ff.json"
    local log="$OUT/ff${ff}_$q.txt" start=$SECONDS
    timeout 60 .device/run ctxlab bench gpu-decode --model "random:$OUT/ff$ff.json" --context 256 --tokens 32 --rounds 2 \
      --copy-mib 512 --no-stages --quant "$q" --gemv-split both > "$log" 2>&1
    echo "== 8-layer shape, ff $ff, $q: exit $? after $((SECONDS - start)) s"
    grep -E "^\| (llama|gate_proj|down_proj|four)|rror" "$log"
  done
}
for part in ${PARTS:-decode}; do
  case $part in
    decode)
      decode bf16 60 none
      decode int8 120 int8:lm_head=true --gemv-split both
      decode q4_0 140 q4_0 --gemv-split both
      decode "nf4 codes=bfloat16" 140 nf4:codes=bfloat16 --gemv-split both ;;
    ff) ff_tables q4_0 10560 11008 12672 ;;
    7b) CONTEXTS=256 decode bf16 60 none
        CONTEXTS=256 decode q4_0 140 q4_0 --gemv-split both
        CONTEXTS=256 decode int8 120 int8:lm_head=true --gemv-split both ;;
  esac
done
