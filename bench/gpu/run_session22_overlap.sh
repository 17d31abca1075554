#!/usr/bin/env bash
# Twenty-second session: decode attention beside the qkv GEMV (GpuEngineOptions::attention_overlap).
# 1. gpu_engine_test's GpuAttentionOverlap (each model decoded with and without it) and GpuFusedRope
#    (the default path still bit for bit as the separate launches);
# 2. the 7B at 256 and 1024 with the overlap off and on, one engine: q4_0, then bf16;
# 3. main's ctxlab (carried as .device/ctxlab_main.xz), q4_0 and bf16, for the default path's cost;
# 4. the q4_0 kernel timeline both ways; gpu_attention_test and gpu_quant_test; q4_0 with its
#    classifier in q4_0 too (lm_head=true) both ways.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test gpu_quant_test" bash scripts/device_bundle.sh
# and main's stripped ctxlab xz-compressed as .device/ctxlab_main.xz.
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
start=$SECONDS
timeout 120 .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='*AttentionOverlap*:*FusedRope*' \
  > "$OUT/overlap_tests.txt" 2>&1
echo "== gpu_engine_test *AttentionOverlap*:*FusedRope*: exit $? after $((SECONDS - start)) s"
summary "$OUT/overlap_tests.txt" 30
grep "overlap vs not" "$OUT/overlap_tests.txt"
decode_7b q4_0_overlap 200 q4_0 --attention-overlap 0,1
decode_7b bf16_overlap 120 none --attention-overlap 0,1
if [[ -f .device/ctxlab_main.xz ]] && unpack_ctxlab ctxlab_main; then
  CTXLAB_PROG=ctxlab_main decode_7b q4_0_main 120 q4_0
  CTXLAB_PROG=ctxlab_main decode_7b bf16_main 80 none
fi
for o in 0 1; do
  ((SECONDS + 60 < ${LIMIT_S:-570})) || break
  log="$OUT/timeline_q4_0_overlap$o.txt" t0=$SECONDS
  timeout 90 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant q4_0 \
    --attention-overlap $o > "$log" 2>&1
  echo "== timeline 7B q4_0 overlap $o: exit $? after $((SECONDS - t0)) s"
  grep -E "^ms/token|^\| (embed|.*gemv|.*attention|.*argmax)|rror" "$log" | cut -c1-220
done
((SECONDS + 80 < ${LIMIT_S:-570})) && run_test_programs gpu_attention_test gpu_quant_test
decode_7b q4_0_lm_head_overlap 200 q4_0:lm_head=true --attention-overlap 0,1
