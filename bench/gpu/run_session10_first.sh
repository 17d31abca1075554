#!/usr/bin/env bash
# Tenth 2026-12-06 session, first call, on branch gpupagedkivi (paged KV with KIVI on the GPU engine:
# the bf16 ring's rows in pool blocks; and the quantized GEMV of an input given as is reading it from
# global memory): gpu_attention_test, gpu_engine_test and gpu_quant_test in full; KIVI decode attention
# at 32k, contiguous and paged 16, with this build and main's in the same call; the 7B's int8 and q4_0
# decode with the input read in place and staged (CTXLAB_QGEMV_STAGE_INPUT=1), alternating.
# It ran on branch gemvglobal's build (gpupagedkivi + the in-place input; main ignores
# CTXLAB_QGEMV_STAGE_INPUT, so there the last part times one kernel twice).
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash
# scripts/device_bundle.sh, then main's stripped ctxlab as .device/ctxlab_main.xz (xz -6).
# The memory demo's paged + l2norm + KIVI int8 + int8 weights row is a second call:
#   CONTEXT_SETTINGS=paged_l2norm_kivi8_int8w BATCH_SETTINGS="" RUN_TIMEOUT=400 bash bench/gpu/run_memdemo7b.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_main
run_test_programs gpu_attention_test gpu_engine_test gpu_quant_test
echo "paged KIVI attention cases: $(grep -c '_block[0-9]* ' "$OUT/gpu_attention_test.txt") lines," \
  "worst $(grep '_block[0-9]* ' "$OUT/gpu_attention_test.txt" | awk '{w = $NF + 0; if (w > m) m = w} END {print m}')"
grep -E "paged|kivi batch" "$OUT/gpu_engine_test.txt" | head -20
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 contiguous)"
for round in 1 2; do
  kivi_bench "MHA branch ($round)" --kivi-bits 4 --block-size 0,16
  CTXLAB_PROG=ctxlab_main kivi_bench "MHA main ($round)" --kivi-bits 4
  kivi_bench "GQA branch ($round)" --kv-heads 8 --kivi-bits 4 --block-size 0,16
  CTXLAB_PROG=ctxlab_main kivi_bench "GQA main ($round)" --kv-heads 8 --kivi-bits 4
done
for round in 1 2; do
  runs="int8:0 int8:1 q4_0:0 q4_0:1"
  [[ $round == 1 ]] && runs="none:0 $runs"
  for run in $runs; do
    ((SECONDS < 520)) || { echo "(stopped at $SECONDS s)"; break 2; }
    q=${run%%:*} staged=${run##*:}
    CTXLAB_QGEMV_STAGE_INPUT=$staged timeout 100 .device/run ctxlab bench gpu-decode --model "$M7" --context 1024 \
      --tokens 64 --rounds 2 --copy-mib 512 --no-stages --quant "$q" > "$OUT/d7b_${q}_staged${staged}_$round.txt" 2>&1
    echo "== 7B $q staged=$staged round $round: exit $?"
    grep -E "^\| llama|^\| [a-z_]+ \[|rror" "$OUT/d7b_${q}_staged${staged}_$round.txt"
  done
done
