#!/usr/bin/env bash
# One device call: ctxlab's GPU logits against HF transformers on a random Llama-2-7B-shaped
# checkpoint (bench/gpu/hf_logits.py), then compute-sanitizer memcheck and racecheck over the GPU
# engine tests (every kernel of the forward pass, the attention kernels included).
# Here:   BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_checks.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
echo "== ctxlab logits --device cuda vs HF transformers, random Llama-2-7B shape"
python3 bench/gpu/hf_logits.py .device/bench_configs/llama2_7b.json "${TOKENS:-128}"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
for tool in memcheck racecheck; do
  echo "== compute-sanitizer --tool $tool gpu_engine_test"
  # llama, qwen3 (q/k norm), mistral_swa (sliding window), the profile test and the head-dim tests
  # (the vectorised attention kernel at 64/128/256) cover every kernel.
  # cuBLAS's nvjet GEMM kernels synchronise through TMA/mbarriers, which racecheck does not model: it
  # reports hazards inside them; ctxlab's own kernels are what this checks.
  .device/run exec "$sanitizer" --tool "$tool" --kernel-name-exclude kns=nvjet .device/bin/gpu_engine_test --gtest_brief=1 \
    --gtest_filter='HfFixtures/GpuFixture.*/0:HfFixtures/GpuFixture.*/4:HfFixtures/GpuFixture.*/6:GpuEngine.Decode*:HeadDims/*:*Paged*:GpuBatch.Batched*' 2>&1 | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|OK|FAILED|Invalid|Race|hazard" | head -40
  echo "== compute-sanitizer --tool $tool gpu_attention_test"
  .device/run exec "$sanitizer" --tool "$tool" .device/bin/gpu_attention_test --gtest_brief=1 \
    --gtest_filter='*len300*:*len1000_q1_win37*:*split7*:*len96_q32*' 2>&1 | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|FAILED|Invalid|Race|hazard" | head -20
done
