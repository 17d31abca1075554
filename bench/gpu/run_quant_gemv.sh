#!/usr/bin/env bash
# One device call for the tensor-core quantized GEMV (issue 8, second round): the quantized-weight GPU
# tests, the bf16 engine tests, then ctxlab's batch-1 decode of the Llama-2-7B shape (random weights) in
# bf16 and with each GPU quantizer (ms/token, the roofline ratio, and per format the GEMV table against
# the bf16 GEMV and the copy bandwidth), all on the same card. Full logs under $OUT.
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_quant_gemv.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
# QUANTS, CONTEXT (1024), NEW (64), ROUNDS (2) override the defaults; TESTS=0 skips the tests.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/quant_gemv_out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
if [[ "${TESTS:-1}" != 0 ]]; then
  echo "== gpu_quant_test"
  timeout 150 .device/run gpu_quant_test > "$OUT/gpu_quant_test.log" 2>&1
  echo "rc $?"
  grep -E "worst|gpu - cpu|decode vs prefill|agree for|first difference|FAILED|Failure|Expected|Which is|PASSED|error" \
    "$OUT/gpu_quant_test.log" | head -120
  echo "== gpu_engine_test (bf16 engine; LinearWeights)"
  timeout 120 .device/run gpu_engine_test --gtest_brief=1 > "$OUT/gpu_engine_test.log" 2>&1
  echo "rc $?"
  grep -E "FAILED|Failure|PASSED|Skipped" "$OUT/gpu_engine_test.log" | head -20
fi
for q in ${QUANTS:-none q4_0 nf4 int8 q8_0 fp4}; do
  echo "== ctxlab bench gpu-decode --quant $q"
  timeout 150 .device/run ctxlab bench gpu-decode --model random:.device/bench_configs/llama2_7b.json \
    --context "${CONTEXT:-1024}" --tokens "${NEW:-64}" --rounds "${ROUNDS:-2}" --quant "$q" > "$OUT/decode_$q.log" 2>&1
  echo "rc $?"
  grep -E "^\||device:|GEMV|error|rror" "$OUT/decode_$q.log" | head -30
done
