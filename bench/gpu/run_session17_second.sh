#!/usr/bin/env bash
# Seventeenth session, second call: decode attention with RoPE fused in pulls its first K/V rows into
# L1 before pdl_wait (during the qkv GEMV's tail), and the last chunk combines up to 8 chunks with one
# round trip to L2. gpu_engine_test and gpu_attention_test, then the 7B decode at 256 (min chunk 32 and
# 64) and the q4_0 kernel timeline with this build (ctxlab) and the session's first build (ctxlab_base,
# carried as .device/ctxlab_base.xz), alternating.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh &&
#       xz -T2 -1 -c /tmp/base/ctxlab_base > .device/ctxlab_base.xz  (ctxlab of commit 5a46ca3, stripped)
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_base
run_test_programs gpu_engine_test gpu_attention_test
for prog in ctxlab ctxlab_base; do
  log="$OUT/timeline_q4_0_$prog.txt" start=$SECONDS
  timeout 90 .device/run $prog bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant q4_0 > "$log" 2>&1
  echo "== timeline 7B q4_0, $prog: exit $? after $((SECONDS - start)) s"
  grep -E "^ms/token|^\| (attention|quant_gemv)|rror" "$log"
done
for q in q4_0 int8:lm_head=true none; do
  for prog in ctxlab ctxlab_base; do
    CTXLAB_PROG=$prog CONTEXTS=256 decode_7b "${q%%:*}_$prog" 120 "$q" --decode-min-chunk 32,64
  done
done
CONTEXTS=256 decode_7b q4_0_prefetch 120 q4_0 --attention-prefetch 1 --decode-min-chunk 32,64
