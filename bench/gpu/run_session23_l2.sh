#!/usr/bin/env bash
# Twenty-third session, second call: decode attention pulling the layer's next weights into L2
# (GpuEngineOptions::attention_l2_prefetch: o_proj's, then gate/up's first tiles), with the bf16
# fused-RMSNorm GEMV at 72 registers (now the default) and the overlap off and on.
# 1. gpu_engine_test whole (its L2-prefetch cases bit for bit; the bf16 GEMV against HF's logits);
# 2. the 7B at 256 and 1024, one engine each: q4_0 and bf16, overlap 0,1 x L2 0,8,16,32 MiB;
#    main's ctxlab (.device/ctxlab_main.xz, 2590dca) bf16 in the same call;
# 3. q4_0 kernel timelines without and with 16 MiB; gpu_attention_test.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
# and main's stripped ctxlab xz-compressed as .device/ctxlab_main.xz.
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_engine_test
grep -E "overlap vs not" "$OUT/gpu_engine_test.txt" | awk '{print $1, $6, $9}' | sort | uniq -c | head -3
decode_7b q4_0_l2 200 q4_0 --attention-overlap 0,1 --attention-l2-prefetch-mib 0,8,16,32
decode_7b bf16_l2 120 none --attention-overlap 0,1 --attention-l2-prefetch-mib 0,8,16,32
if [[ -f .device/ctxlab_main.xz ]] && unpack_ctxlab ctxlab_main; then
  CTXLAB_PROG=ctxlab_main decode_7b bf16_main 80 none
fi
for mib in 0 16; do
  ((SECONDS + 60 < ${LIMIT_S:-570})) || break
  log="$OUT/timeline_q4_0_l2_$mib.txt" t0=$SECONDS
  timeout 90 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant q4_0 \
    --attention-l2-prefetch-mib $mib > "$log" 2>&1
  echo "== timeline 7B q4_0 L2 $mib MiB: exit $? after $((SECONDS - t0)) s"
  grep -E "^ms/token|^\| (embed|.*gemv|.*attention|.*argmax)|rror" "$log" | cut -c1-220
done
((SECONDS + 60 < ${LIMIT_S:-570})) && run_test_programs gpu_attention_test
