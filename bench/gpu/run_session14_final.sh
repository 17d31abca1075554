#!/usr/bin/env bash
# Fourteenth session, last call: gpu_quant_test and gpu_engine_test in full on the final commit (the
# GEMV chain's counting barrier now the default).
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "Chain" "$OUT/gpu_quant_test.txt" | grep -E "OK|FAILED" | head -20
