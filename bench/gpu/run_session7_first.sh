#!/usr/bin/env bash
# The seventh 2026-12-06 session's first call (< 420 s): branch kiviprefill (holds qgemvrows) before
# merging it. Every test of gpu_quant_test and gpu_engine_test (the batched quantized GEMV now serves
# every 2-8 row forward; KIVI prompt chunks go through the flash kernels), gpu_attention_test's KIVI
# cases (the slot-aware expand kernel), then bench/gpu/run_session6_pending.sh's benchmarks.
# Here: BUILD=build BUNDLE_DATASETS=1 BUNDLE_TESTS="gpu_quant_test gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "chunks of 64|flash vs split|kivi batch" "$OUT/gpu_engine_test.txt" | head -12
kivi_attention_checks "slot-aware expand"
bash bench/gpu/run_session6_pending.sh 2>&1 | grep -v "^== gpu_engine_test \*Kivi\*" 
