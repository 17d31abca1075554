#!/usr/bin/env bash
# One short device call (< 110 s) for main's quantized GEMV (after split-K was reverted): batch-1 decode
# at 1k of the 8-layer Llama-2-7B shape in bf16, int8, q4_0, nf4 (same call), then the 7B itself with
# int8. Written for the fourth 2026-12-06 session's last call, which the device refused (time spent):
# not run yet. Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
for q in none int8 q4_0 nf4; do
  timeout 20 .device/run ctxlab bench gpu-decode --model $M8 --context 1024 --tokens 32 --rounds 1 --copy-mib 512 --no-stages --quant $q > $OUT/d8_$q.txt 2>&1
  echo "== 8-layer $q exit $?"; grep -E "^\| llama|^\| [a-z_]+ \[|rror" $OUT/d8_$q.txt
done
timeout $((100 - SECONDS)) .device/run ctxlab bench gpu-decode --model random:.device/bench_configs/llama2_7b.json --context 1024 --tokens 32 --rounds 1 --copy-mib 512 --no-stages --quant int8 > $OUT/d32_int8.txt 2>&1
echo "== 7B int8 exit $?"; grep -E "^\| llama|^\| [a-z_]+ \[|rror" $OUT/d32_int8.txt
