#!/usr/bin/env bash
# Batched decode with KIVI KV (branch kivibatch, sixth 2026-12-06 session). One call (< 560 s):
#  1. gpu_engine_test whole (the KV cache's KIVI codes now [slot][kv_head][rows]: every engine test
#     over the changed storage, the new GpuKiviBatch case) and gpu_attention_test's KIVI cases (the
#     quantize kernel's batched form beside the single-sequence ones);
#  2. bench/gpu/run_memdemo7b.sh: the memory demo on the 7B under 20 GiB, contexts at batch 1 and
#     batches at 8k (kivi8_int8w now among the settings that batch).
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
run_test_programs gpu_engine_test
grep -E "GpuKiviBatch" "$OUT/gpu_engine_test.txt" | head -8
kivi_attention_checks "quantize kernel with seq_lens"
RUN_TIMEOUT=$(( (540 - SECONDS) / 2 )) bash bench/gpu/run_memdemo7b.sh
