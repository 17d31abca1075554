#!/usr/bin/env bash
# Tenth 2026-12-06 session, first call, on branch gpupagedkivi (paged KV with KIVI on the GPU engine:
# the bf16 ring's rows in pool blocks): gpu_attention_test and gpu_engine_test in full (the new paged
# KIVI cases among them); KIVI decode attention at 32k, contiguous and paged 16, with this build and
# main's in the same call; then the 7B memory demo's paged + l2norm 0.5 + KIVI int8 + int8 weights
# row, 8k .. 64k under 20 GiB.
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh, then
# main's stripped ctxlab as .device/ctxlab_main.xz (xz -6).
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_main
run_test_programs gpu_attention_test gpu_engine_test
echo "paged KIVI attention cases: $(grep -c '_block[0-9]* ' "$OUT/gpu_attention_test.txt") lines," \
  "worst $(grep '_block[0-9]* ' "$OUT/gpu_attention_test.txt" | awk '{w = $NF + 0; if (w > m) m = w} END {print m}')"
grep -E "paged|kivi batch" "$OUT/gpu_engine_test.txt" | head -20
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 contiguous)"
for round in 1 2; do
  kivi_bench "MHA branch ($round)" --kivi-bits 4 --block-size 0,16
  CTXLAB_PROG=ctxlab_main kivi_bench "MHA main ($round)" --kivi-bits 4
  kivi_bench "GQA branch ($round)" --kv-heads 8 --kivi-bits 4 --block-size 0,16
  CTXLAB_PROG=ctxlab_main kivi_bench "GQA main ($round)" --kv-heads 8 --kivi-bits 4
done
CONTEXT_SETTINGS="${CONTEXT_SETTINGS:-paged_l2norm_kivi8_int8w}" BATCH_SETTINGS="" RUN_TIMEOUT="${RUN_TIMEOUT:-300}" \
  bash bench/gpu/run_memdemo7b.sh
