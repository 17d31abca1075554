#!/usr/bin/env bash
# The seventh 2026-12-06 session's last call (< 120 s): main's KIVI tensor-core pass as it lands (the
# 32-key tiles with P in fp16 only; the query's fragments carry the softmax scale, whole tiles skip
# the key mask): gpu_attention_test's KIVI cases, every gpu_engine_test case, and issue 8's decode
# attention at 32k twice (MHA 32/32 and GQA 32/8, head_dim 128, group 32, residual 128, 4 and 8 bits).
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
kivi_attention_checks "as landed"
run_test_programs gpu_engine_test
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
for round in 1 2; do
  kivi_bench "MHA ($round)" --kivi-bits 4,8
  kivi_bench "GQA ($round)" --kv-heads 8 --kivi-bits 4,8
done
