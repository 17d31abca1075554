#!/usr/bin/env bash
# One device call (about 5 minutes) for what issue 7 still lacks after the third 2026-12-06 session's
# merges: compute-sanitizer memcheck and racecheck on the attention kernels added then (the TMA +
# warp-specialised flash kernel, the tensor-core split-KV pass for GQA and KIVI, eager attention's
# softmax kernel, the score-mod Logits policy), then the batch-1 decode of the Llama-2-7B shape at 1k
# (>= 0.85 of the roofline) with HF generate in the same call, and decode attention alone at 32k for
# MHA and GQA 32q/8kv (>= 0.85 of copy bandwidth) with the defaults as committed. Full logs in $OUT.
# Here:   BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_issue7_close.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
M=random:.device/bench_configs/llama2_7b.json
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
# GpuAttentionWgmma runs wgmma 64x4/128x8 and the TMA kernel with and without ping-pong; d128 GQA
# decode cases take the tensor-core split-KV pass; Kivi *_q1_* the tensor-core KIVI pass; eager and
# score mods their own suites. Small shapes keep the sanitizer's slowdown affordable.
filter='*GpuAttentionWgmma.*h8_kv2_d128_len300_q300_win0_split0:*GpuAttentionWgmma.*h4_kv1_d128_len300_q300_win16_split0:*GpuAttentionWgmma.*d64_len300_q300_win0_split0_flex_window100:Shapes/GpuAttention.*kv2_d128_len200_q1*:*GpuKiviAttention*h8_kv4_d128_b4_g32_r128_len100_q1_split0:*GpuKiviAttention*h8_kv4_d128_b2_g32_r128_len100_q1_split0:*GpuAttentionEager.*h8_kv2_d128_len300_q300_win0_split0:*GpuAttentionScoreMod.*d128_len300*'
for tool in memcheck racecheck; do
  start=$SECONDS
  timeout 150 .device/run exec "$sanitizer" --tool "$tool" --kernel-name-exclude kns=nvjet .device/bin/gpu_attention_test \
    --gtest_brief=1 --gtest_filter="$filter" > "$OUT/sanitizer_$tool.txt" 2>&1
  echo "== compute-sanitizer --tool $tool gpu_attention_test: exit $? after $((SECONDS - start)) s"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED|tests ran" "$OUT/sanitizer_$tool.txt" | head -10
done
start=$SECONDS
timeout 120 .device/run exec "$sanitizer" --tool memcheck --kernel-name-exclude kns=nvjet .device/bin/gpu_engine_test \
  --gtest_brief=1 --gtest_filter='HfFixtures/GpuEager.*/0:GpuFlexScoreMods.*:HfFixtures/GpuFixture.*/0' > "$OUT/sanitizer_engine.txt" 2>&1
echo "== compute-sanitizer memcheck gpu_engine_test (eager, score mods, llama): exit $? after $((SECONDS - start)) s"
grep -E "ERROR SUMMARY|PASSED|FAILED|tests ran" "$OUT/sanitizer_engine.txt" | head -10
echo "== batch-1 decode, Llama-2-7B shape, 1k context"
timeout 120 .device/run ctxlab bench gpu-decode --model $M --context 1024 --tokens 128 --rounds 3 --no-stages > "$OUT/decode.txt" 2>&1
grep -E "^device|^\| llama" "$OUT/decode.txt"
timeout 150 python3 bench/gpu/hf_decode.py .device/bench_configs/llama2_7b.json 1024 128 > "$OUT/hf_decode.txt" 2>&1
tail -3 "$OUT/hf_decode.txt"
echo "== decode attention alone at 32k: MHA and GQA 32q/8kv (defaults)"
timeout 60 .device/run ctxlab bench gpu-attention --context 32768 --copy-mib 512 | grep "^| [0-9]"
timeout 60 .device/run ctxlab bench gpu-attention --kv-heads 8 --context 32768 --copy-mib 512 | grep "^| [0-9]"
