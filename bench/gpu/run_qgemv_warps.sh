#!/usr/bin/env bash
# One short device call (< 150 s): the quantized GEMV with 8 and 16 warps per block
# (CTXLAB_QGEMV_WARPS) after the interleaved 8-bit code layout (whole 32-byte sectors per cp.async):
# gpu_quant_test (every format vs the CPU plugin), then the per-format GEMV tables and batch-1 decode
# of the 8-layer Llama-2-7B shape at 1k for int8, q4_0, nf4 with each block size. Logs in $OUT.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
start=$SECONDS
timeout 40 .device/run gpu_quant_test --gtest_brief=1 > "$OUT/gpu_quant_test.txt" 2>&1
echo "== gpu_quant_test: exit $? after $((SECONDS - start)) s"; grep -E "FAILED|PASSED|rror" "$OUT/gpu_quant_test.txt" | head
for w in 8 16; do
  for q in ${QUANTS:-int8 q4_0 nf4}; do
    echo "== warps $w, $q"
    CTXLAB_QGEMV_WARPS=$w timeout 30 .device/run ctxlab bench gpu-decode --model $M8 --context 1024 --tokens 32 --rounds 1 \
      --copy-mib 512 --no-stages --quant $q > "$OUT/decode_${q}_w$w.txt" 2>&1
    echo "exit $?"; grep -E "^\| [a-z_]+ \[|^\| llama|rror" "$OUT/decode_${q}_w$w.txt"
  done
done
