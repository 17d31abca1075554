#!/usr/bin/env bash
# One device call: the quantized-weight GPU tests, then ctxlab's batch-1 decode of the Llama-2-7B shape
# (random weights) with bf16 weights and with each quantizer whose packed bytes the GPU reads (ms/token,
# tok/s, bytes read per token and the ratio to the roofline of those bytes, plus each format's GEMV
# against the bf16 GEMV on the same shapes), all on the same card.
# Here:   BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_quant_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_quant.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
# QUANTS="none q4_0" CONTEXT=1024 NEW=128 ROUNDS=3 override the defaults; TESTS=0 skips the tests (to
# split the work over two calls if one would pass the 10-minute limit).
set -uo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader
if [[ "${TESTS:-1}" != 0 ]]; then
  echo "== gpu_quant_test"
  .device/run gpu_quant_test 2>&1 | grep -E "worst|gpu - cpu|decode vs prefill|agree for|first difference|on the device|OK|FAILED|Failure|Expected|Which is|error|Skipped" | head -150
  echo "== gpu_engine_test (the bf16 engine after the LinearWeights change)"
  .device/run gpu_engine_test --gtest_brief=1 2>&1 | grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped" | head -40
fi
CONTEXT=${CONTEXT:-1024}
NEW=${NEW:-128}
ROUNDS=${ROUNDS:-3}
for q in ${QUANTS:-none int8 q8_0 q4_0 nf4 fp4}; do
  echo "== ctxlab bench gpu-decode --quant $q (Llama-2-7B shape, random weights)"
  .device/run ctxlab bench gpu-decode --model random:.device/bench_configs/llama2_7b.json --context "$CONTEXT" \
    --tokens "$NEW" --rounds "$ROUNDS" --quant "$q" 2>&1 | head -80
done
