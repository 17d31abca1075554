#!/usr/bin/env bash
# Thirteenth session (2026-12-07), first call, on branch pagedparams = main + both pending patches of
# the time (qgemv_xregs_nf4pair, merged; l2prefetch, not merged: --l2-prefetch-mib is in
# bench/gpu/pending/l2prefetch.patch as of commit f9cb77d) + PagedPool in AttentionParams/QkvRopeParams (merged). Main's PagedPool refactor (twelfth session,
# compiled only) is verified by the same tests, since the patches leave it as it is.
# 1. gpu_engine_test, gpu_attention_test and gpu_quant_test in full (paged KIVI cases, the L2 prefetch's
#    bit-for-bit test, the nf4/fp4 codes=bfloat16 GEMV cases).
# 2. The 7B's batch-1 decode at contexts 256 and 1024, one process per format and binary (a 4-bit
#    format's host quantization takes more than 30 s, so each process times several engines): this
#    build with the L2 weight prefetch off, 16 and 32 MiB ("new"), main's binary ("main").
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test gpu_attention_test" bash
# scripts/device_bundle.sh, then main's stripped ctxlab as .device/ctxlab_main.xz (xz -6).
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_main
limit=${LIMIT_S:-560}
run_test_programs gpu_engine_test gpu_attention_test gpu_quant_test
grep -E "L2Prefetch|aged.*Kivi|Kivi.*aged" "$OUT/gpu_engine_test.txt" | head -12
echo "paged KIVI attention lines: $(grep -c '_block[0-9]* ' "$OUT/gpu_attention_test.txt"), worst" \
  "$(grep '_block[0-9]* ' "$OUT/gpu_attention_test.txt" | awk '{w = $NF + 0; if (w > m) m = w} END {print m}')"
grep -E "codes=bfloat16" "$OUT/gpu_quant_test.txt" | head -24
# decode LABEL TIMEOUT PROG QUANT [FLAGS...]: the 7B's batch-1 decode at 256 and 1024.
decode() {
  local label=$1 limit_s=$2 prog=$3 q=$4
  shift 4
  ((SECONDS + 20 < limit)) || { echo "(no time for $label at $SECONDS s)"; return; }
  local log="$OUT/d7b_${label//[: =]/_}.txt" start=$SECONDS
  timeout "$limit_s" .device/run "$prog" bench gpu-decode --model "$M7" --context 256,1024 --tokens 64 --rounds 2 \
    --copy-mib 512 --no-stages --quant "$q" "$@" > "$log" 2>&1
  echo "== 7B $label: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^\| llama|^\| [a-z_]+ \[|rror" "$log" | sed 's/, copy bandwidth.*//'
}
decode "none new" 60 ctxlab none --l2-prefetch-mib 0,16,32
decode "int8 new" 60 ctxlab int8 --l2-prefetch-mib 0,16,32
decode "q4_0 new" 90 ctxlab q4_0 --l2-prefetch-mib 0,16,32
decode "q4_0 main" 80 ctxlab_main q4_0
decode "nf4 codes=bfloat16 new" 90 ctxlab nf4:codes=bfloat16 --l2-prefetch-mib 0,16,32
decode "nf4 main" 80 ctxlab_main nf4
decode "int8 main" 60 ctxlab_main int8
CTXLAB_QGEMV_X_REGS=0 CTXLAB_QGEMV_STAGE_INPUT=1 decode "q4_0 old" 90 ctxlab q4_0 --l2-prefetch-mib 0,16
decode "none main" 60 ctxlab_main none
