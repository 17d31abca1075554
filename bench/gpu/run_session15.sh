#!/usr/bin/env bash
# Fifteenth session (2026-12-07): ctxlab's quantized batch-1 decode against its PyTorch peers on one card.
#   PART=ctxlab  the 7B's decode at 256 and 1024 for bf16, int8 (lm_head bf16 and int8), q4_0 and nf4
#                codes=bfloat16 (`ctxlab bench gpu-decode`, 64 tokens x 2 rounds);
#   PART=torch   bench/gpu/torch_quant_decode.py at 256: gpt-fast-style PyTorch (inductor-compiled layer,
#                the step in one CUDA graph) with bf16, int8 (fused dequantizing GEMV) and tinygemm int4
#                (groups of 32 and 128) weights; then ctxlab bf16 again as the same machine's anchor.
# Run the two parts back to back on one warm machine. Here:
#   BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
# peer WEIGHTS TIMEOUT [FLAGS...]: the PyTorch peer at 256.
peer() {
  local w=$1 limit_s=$2
  shift 2
  ((SECONDS + 40 < ${LIMIT_S:-570})) || { echo "(no time for torch $w at $SECONDS s)"; return; }
  local log="$OUT/torch_$w$(printf '%s' "$@" | tr -c 'a-z0-9' _).txt" start=$SECONDS
  PYTHONUNBUFFERED=1 timeout "$limit_s" python3 bench/gpu/torch_quant_decode.py bench/configs/llama2_7b.json \
    --weights "$w" --context 256 --tokens 64 --rounds 3 "$@" > "$log" 2>&1
  echo "== torch 7B $w $*: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^copy|tinygemm|^weights|^compile|^RESULT|Error|error:" "$log" | head -12
}
case "${PART:-ctxlab}" in
  ctxlab)
    decode_7b bf16 60 none
    decode_7b int8 80 int8
    decode_7b "int8 lm_head" 80 int8:lm_head=true
    decode_7b q4_0 110 q4_0
    decode_7b "nf4 codes=bfloat16" 110 nf4:codes=bfloat16
    ;;
  torch)
    peer bf16 150
    peer int8 150
    peer int4_g32 150
    peer int4_g128 150
    CONTEXTS=256 decode_7b bf16 50 none
    ;;
esac
