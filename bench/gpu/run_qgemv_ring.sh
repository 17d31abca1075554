#!/usr/bin/env bash
# Quantized GEMV block configurations RING:WARPS, as run in the fifth 2026-12-06 session at commit
# a6a109e (check it out to rerun): ring depth (CTXLAB_QGEMV_RING_KIB: KiB of cp.async ring per block;
# 48 is main's fixed size) and CTXLAB_QGEMV_WARPS (16, 8, and 16x2: 16-warp blocks held to 64
# registers). Neither switch was faster; both are removed from main, where only CTXLAB_QGEMV_WARPS=8
# remains (RING_KIB is then ignored). gpu_quant_test with an 80 KiB ring, then batch-1 decode at 1k of the 8-layer Llama-2-7B shape with int8, q4_0 and nf4 per
# configuration RING:WARPS (the GEMV table per matrix and ms/token), and decode attention alone at 1k
# (MHA 32 x 128) on tensor cores vs the CUDA-core pass.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
CONFIGS=${CONFIGS:-48:16 80:16}
CTXLAB_QGEMV_RING_KIB=80 timeout 100 .device/run gpu_quant_test --gtest_brief=1 > $OUT/quant_test.txt 2>&1
echo "== gpu_quant_test ring 80 KiB exit $?"; grep -E "PASSED|FAILED|tests ran" $OUT/quant_test.txt | head -12
for q in ${QUANTS:-int8 q4_0 nf4}; do
  for c in $CONFIGS; do
    CTXLAB_QGEMV_RING_KIB=${c%%:*} CTXLAB_QGEMV_WARPS=${c##*:} timeout 40 .device/run ctxlab bench gpu-decode --model $M8 --context 1024 --tokens 32 --rounds 2 --copy-mib 512 --no-stages --quant $q > $OUT/d8.txt 2>&1
    echo "== 8-layer $q config $c exit $? at ${SECONDS}s"; grep -E "^\| llama|^\| [a-z_]+ \[|rror" $OUT/d8.txt | sed -E 's/^\| llama[^|]*\|/| 8-layer |/'
  done
done
for tc in 0 1; do
  timeout 30 .device/run ctxlab bench gpu-attention --context 1024 --splits 0,8,16 --tensor-cores $tc --copy-mib 512 --rounds 10 > $OUT/attn.txt 2>&1
  echo "== attention 1k tensor-cores $tc exit $?"; grep -E "^\| [0-9]" $OUT/attn.txt
done
