#!/usr/bin/env bash
# Fourteenth session, last call: gpu_quant_test and gpu_engine_test in full on the final commit (the
# GEMV chain's counting barrier now the default), then the per-stage breakdown of a q4_0 decode step.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "Chain" "$OUT/gpu_quant_test.txt" | grep -E "OK|FAILED" | head -20
# Where a q4_0 decode step of the 7B goes at context 256 (kernels launched one by one, an event after
# each stage), for the next attempt at the 3x target.
echo "== 7B q4_0 stages at 256"
timeout 120 .device/run ctxlab bench gpu-decode --model "$M7" --context 256 --tokens 32 --rounds 1 --copy-mib 512 \
  --quant q4_0 > "$OUT/stages_q4_0.txt" 2>&1
echo "exit $?"
grep -E "^\| [a-z]|^one decode" "$OUT/stages_q4_0.txt" | grep -vE "^\| (matrix|q_proj|o_proj|gate_proj|down_proj|four|one chain|launches)" | head -20
