#!/usr/bin/env bash
# Two back-to-back device calls (each < 600 s) after merging the pagedflash and llmint8 branches into
# main (2026-12-06, fourth session). PART=tests: every GPU test program (the smem-limit fix for the
# quantized GEMV, llm_int8 on the device, paged flash prefill), paged vs contiguous prefill attention
# and TTFT, then compute-sanitizer memcheck/racecheck on the kernels issue 7 lists (as
# run_issue7_close.sh). PART=perf: batch-1 decode of the Llama-2-7B shape at 1k with HF generate in the
# same call, decode attention alone at 32k (MHA, GQA 32q/8kv), then the 7B decode with each GPU
# quantizer against bf16 (issue 8's speed-ups). Full logs in $OUT.
# Here:   BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash scripts/device_bundle.sh
# Device: PART=tests bash bench/gpu/run_verify_merge.sh; then PART=perf ... (carry [".device"])
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [[ "${PART:-tests}" == tests ]]; then
  run_test_programs gpu_quant_test gpu_attention_test gpu_engine_test
  paged_flash_worst "$OUT/gpu_attention_test.txt"
  paged_prefill_timings
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  filter='*GpuAttentionWgmma.*h8_kv2_d128_len300_q300_win0_split0:*GpuAttentionWgmma.*h4_kv1_d128_len300_q300_win16_split0:*GpuAttentionWgmma.*d64_len300_q300_win0_split0_flex_window100:Shapes/GpuAttention.*kv2_d128_len200_q1*:*GpuKiviAttention*h8_kv4_d128_b4_g32_r128_len100_q1_split0:*GpuKiviAttention*h8_kv4_d128_b2_g32_r128_len100_q1_split0:*GpuAttentionEager.*h8_kv2_d128_len300_q300_win0_split0:*GpuAttentionScoreMod.*d128_len300*'
  for tool in memcheck racecheck; do
    left=$((560 - SECONDS)); (( left > 20 )) || break
    start=$SECONDS
    timeout $((left < 150 ? left : 150)) .device/run exec "$sanitizer" --tool "$tool" --kernel-name-exclude kns=nvjet \
      .device/bin/gpu_attention_test --gtest_brief=1 --gtest_filter="$filter" > "$OUT/sanitizer_$tool.txt" 2>&1
    echo "== compute-sanitizer --tool $tool gpu_attention_test: exit $? after $((SECONDS - start)) s"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED|tests ran" "$OUT/sanitizer_$tool.txt" | head -10
  done
  left=$((580 - SECONDS))
  if (( left > 20 )); then
    start=$SECONDS
    timeout $left .device/run exec "$sanitizer" --tool memcheck --kernel-name-exclude kns=nvjet .device/bin/gpu_engine_test \
      --gtest_brief=1 --gtest_filter='HfFixtures/GpuEager.*/0:GpuFlexScoreMods.*:HfFixtures/GpuFixture.*/0' > "$OUT/sanitizer_engine.txt" 2>&1
    echo "== compute-sanitizer memcheck gpu_engine_test (eager, score mods, llama): exit $? after $((SECONDS - start)) s"
    grep -E "ERROR SUMMARY|PASSED|FAILED|tests ran" "$OUT/sanitizer_engine.txt" | head -10
  fi
else
  echo "== batch-1 decode, Llama-2-7B shape, 1k context (bf16)"
  timeout 120 .device/run ctxlab bench gpu-decode --model $M7 --context 1024 --tokens 128 --rounds 3 --no-stages > "$OUT/decode.txt" 2>&1
  echo "exit $?"; grep -E "^device|^\| llama|rror" "$OUT/decode.txt"
  timeout 150 python3 bench/gpu/hf_decode.py .device/bench_configs/llama2_7b.json 1024 128 > "$OUT/hf_decode.txt" 2>&1
  tail -3 "$OUT/hf_decode.txt"
  echo "== decode attention alone at 32k: MHA and GQA 32q/8kv (defaults)"
  timeout 40 .device/run ctxlab bench gpu-attention --context 32768 --copy-mib 512 | grep "^| [0-9]"
  timeout 40 .device/run ctxlab bench gpu-attention --kv-heads 8 --context 32768 --copy-mib 512 | grep "^| [0-9]"
  for q in int8 llm_int8 q4_0 nf4; do
    left=$((585 - SECONDS)); (( left > 20 )) || break
    echo "== batch-1 decode, Llama-2-7B shape, 1k, --quant $q"
    timeout $((left < 90 ? left : 90)) .device/run ctxlab bench gpu-decode --model $M7 --context 1024 --tokens 64 --rounds 2 \
      --no-stages --quant $q > "$OUT/decode_$q.txt" 2>&1
    echo "exit $?"; grep -E "^\||device:|GEMV|rror" "$OUT/decode_$q.txt" | head -24
  done
fi
