#!/usr/bin/env bash
# Twenty-third session: decode attention beside the qkv GEMV, reading each qkv element as the GEMV
# stores it (AttentionParams::Rope::overlap: unwritten elements hold a NaN pattern; the GEMV has no
# fence or counter), and the bf16 fused-RMSNorm GEMV held to 72 registers (CTXLAB_GEMV_NORM_REGS=72:
# room for one attention block beside three GEMV blocks per SM). That switch existed for this run only:
# the 72-register kernel is the default since, and both bf16 runs now take it.
# 1. gpu_engine_test's GpuAttentionOverlap (each model decoded with and without it; its attention
#    launches in the kernel trace), GpuFusedRope (bit for bit) and the kernel timeline test;
# 2. the 7B at 256 and 1024 with the overlap off and on, one engine: bf16, bf16 with the 72-register
#    GEMV, q4_0; main's ctxlab (.device/ctxlab_main.xz, 2590dca) bf16 in the same call;
# 3. kernel timelines: q4_0 both ways, bf16 with 78 and 72 registers;
# 4. gpu_attention_test and gpu_quant_test.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test gpu_quant_test" bash scripts/device_bundle.sh
# and main's stripped ctxlab xz-compressed as .device/ctxlab_main.xz.
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
start=$SECONDS
timeout 120 .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='*AttentionOverlap*:*FusedRope*:*KernelTimeline*' \
  > "$OUT/overlap_tests.txt" 2>&1
echo "== gpu_engine_test *AttentionOverlap*:*FusedRope*:*KernelTimeline*: exit $? after $((SECONDS - start)) s"
summary "$OUT/overlap_tests.txt" 30
grep "overlap vs not" "$OUT/overlap_tests.txt"
decode_7b bf16_overlap 120 none --attention-overlap 0,1
CTXLAB_GEMV_NORM_REGS=72 decode_7b bf16_regs72_overlap 120 none --attention-overlap 0,1
decode_7b q4_0_overlap 200 q4_0 --attention-overlap 0,1
if [[ -f .device/ctxlab_main.xz ]] && unpack_ctxlab ctxlab_main; then
  CTXLAB_PROG=ctxlab_main decode_7b bf16_main 80 none
fi
timeline() {  # LABEL QUANT OVERLAP [ENV=VALUE]
  ((SECONDS + 60 < ${LIMIT_S:-570})) || { echo "(no time for timeline $1)"; return; }
  local log="$OUT/timeline_$1.txt" t0=$SECONDS
  env ${4:-CTXLAB_NONE=1} timeout 90 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 \
    --quant "$2" --attention-overlap "$3" > "$log" 2>&1
  echo "== timeline 7B $1: exit $? after $((SECONDS - t0)) s"
  grep -E "^ms/token|^\| (embed|.*gemv|.*attention|.*argmax)|rror" "$log" | cut -c1-220
}
timeline q4_0_overlap0 q4_0 0
timeline q4_0_overlap1 q4_0 1
timeline bf16_overlap0 none 0
timeline bf16_regs72_overlap0 none 0 CTXLAB_GEMV_NORM_REGS=72
((SECONDS + 80 < ${LIMIT_S:-570})) && run_test_programs gpu_attention_test gpu_quant_test
timeline bf16_regs72_overlap1 none 1 CTXLAB_GEMV_NORM_REGS=72
