#!/usr/bin/env bash
# Fifth 2026-12-06 session (bundle: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_quant_test"
# bash scripts/device_bundle.sh). PART=tests: gpu_engine_test (the fourth session's review refactors of
# tests/gpu) and gpu_quant_test with the default GEMV block and with CTXLAB_QGEMV_BLOCK=16solo; then
# batch-1 decode at 1k of the 8-layer Llama-2-7B shape, bf16 and int8/q4_0/nf4 with each block shape,
# with the per-stage breakdown. PART=7b: the 7B itself, bf16 and RUNS (quant:block words, default "int8:16 q4_0:16 nf4:16").
. "$(dirname "$0")/common.sh"
PART=${PART:-tests}
if [ "$PART" = tests ]; then
  timeout 150 .device/run gpu_engine_test --gtest_brief=1 > $OUT/engine_test.txt 2>&1
  echo "== gpu_engine_test exit $?"; grep -E "PASSED|FAILED|tests ran" $OUT/engine_test.txt | head -20
  for b in 16 16solo; do
    CTXLAB_QGEMV_BLOCK=$b timeout 100 .device/run gpu_quant_test --gtest_brief=1 > $OUT/quant_test_$b.txt 2>&1
    echo "== gpu_quant_test block $b exit $?"; grep -E "PASSED|FAILED|tests ran" $OUT/quant_test_$b.txt | head -20
  done
    for run in none:16 int8:16 int8:16solo q4_0:16 q4_0:16solo nf4:16 nf4:16solo; do
    set -- ${run/:/ }
    CTXLAB_QGEMV_BLOCK=$2 timeout 40 .device/run ctxlab bench gpu-decode --model $M8 --context 1024 --tokens 32 --rounds 2 --copy-mib 512 --quant $1 > $OUT/d8_$1_$2.txt 2>&1
    echo "== 8-layer $1 block $2 exit $? at ${SECONDS}s"; grep -E "^\| llama|^\| [a-z_/ +]+ \||rror" $OUT/d8_$1_$2.txt
  done
else
  for run in none:16 ${RUNS:-int8:16 q4_0:16 nf4:16}; do
    set -- ${run/:/ }
    CTXLAB_QGEMV_BLOCK=$2 timeout 100 .device/run ctxlab bench gpu-decode --model $M7 --context 1024 --tokens 64 --rounds 2 --copy-mib 512 --no-stages --quant $1 > $OUT/d32_$1_$2.txt 2>&1
    echo "== 7B $1 block $2 exit $? at ${SECONDS}s"; grep -E "^\| llama|^\| [a-z_]+ \[|rror" $OUT/d32_$1_$2.txt
  done
fi
