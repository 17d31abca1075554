#!/usr/bin/env bash
# Branch kivi_simplify (eighth 2026-12-06 session, written after its device time was spent; not yet run
# on a GPU): the one-head KIVI path back to the grouped heads' form (no biased codes, no P.V columns;
# MmaSoftmax::update as at 495b36c), which the eighth session's third call timed as fast as main's
# biased path (72.13 / 72.30 against 72.43 / 72.48 us, H100, MHA 32/32 int4 at 32k). One call:
# gpu_attention_test in full (the update change reverted), the KIVI engine tests, decode attention at 32k.
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== gpu_attention_test (all cases)"
timeout 150 .device/run gpu_attention_test --gtest_brief=1 > "$OUT/gpu_attention_test.txt" 2>&1
echo "rc $?"
grep -E "FAILED|Failure|PASSED|tests ran" "$OUT/gpu_attention_test.txt" | head -12
kivi_engine_checks
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
for round in 1 2; do
  kivi_bench "MHA ($round)" --kivi-bits 4,8
  kivi_bench "GQA ($round)" --kv-heads 8 --kivi-bits 4,8
done
