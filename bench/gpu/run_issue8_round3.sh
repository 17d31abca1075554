#!/usr/bin/env bash
# Two back-to-back device calls (each < 600 s) for issue 8's third round (2026-12-06, fourth session).
# PART=tests: every GPU test program (the quantized GEMV's new 8-bit layout and split-K; KIVI changes;
# KIVI + KV compression), then the KIVI decode-attention benchmark (run_kivifast.sh) and KIVI +
# compression (run_kivicompress.sh) when present. PART=perf: batch-1 decode of the Llama-2-7B shape at
# 1k in bf16 and with each GPU quantizer in the same call (issue 8's speed-up targets), then the
# 8-layer shape with split-K off (CTXLAB_QGEMV_SPLITS=1) and on, and with 8-warp blocks. Logs in $OUT.
# Here:   BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash scripts/device_bundle.sh
# Device: PART=tests bash bench/gpu/run_issue8_round3.sh; then PART=perf ... (carry [".device"])
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [[ "${PART:-tests}" == tests ]]; then
  run_test_programs gpu_quant_test gpu_engine_test gpu_attention_test
  for s in kivifast kivicompress; do
    [[ -f bench/gpu/run_$s.sh ]] || continue
    left=$((585 - SECONDS)); (( left > 30 )) || break
    mkdir -p "$OUT/$s"; start=$SECONDS
    echo "== bench/gpu/run_$s.sh (${left} s left)"
    OUT="$OUT/$s" timeout $((left < 150 ? left : 150)) bash bench/gpu/run_$s.sh 2>&1 | tail -60
    echo "exit $? after $((SECONDS - start)) s"
  done
else
  for q in none int8 q4_0 nf4 llm_int8; do
    left=$((560 - SECONDS)); (( left > 30 )) || break
    echo "== batch-1 decode, Llama-2-7B shape, 1k, --quant $q"
    timeout $((left < 80 ? left : 80)) .device/run ctxlab bench gpu-decode --model $M7 --context 1024 --tokens 64 --rounds 2 \
      --no-stages --quant $q > "$OUT/decode_$q.txt" 2>&1
    echo "exit $?"; grep -E "^\| [a-z_]+ \[|^\| llama|rror" "$OUT/decode_$q.txt"
  done
  for q in int8 q4_0 nf4; do
    for v in "CTXLAB_QGEMV_SPLITS=1" "CTXLAB_QGEMV_WARPS=8" "CTXLAB_QGEMV_DEFAULT=1"; do
      left=$((585 - SECONDS)); (( left > 15 )) || break
      echo "== 8-layer 7B shape, 1k, --quant $q, $v"
      env "$v" timeout 25 .device/run ctxlab bench gpu-decode --model $M8 --context 1024 --tokens 32 --rounds 1 \
        --copy-mib 512 --no-stages --quant $q > "$OUT/decode8_${q}_${v%%=*}.txt" 2>&1
      echo "exit $?"; grep -E "^\| llama|rror" "$OUT/decode8_${q}_${v%%=*}.txt"
    done
  done
fi
