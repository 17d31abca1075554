#!/usr/bin/env bash
# Nineteenth session, first call: the eighteenth session's unrun checks, multi-step decode graphs
# (GpuEngineOptions::decode_graph_steps) and decode attention's chunking at short context.
# gpu_quant_test (GpuArgmax with its planted maxima at 1e6; the argmax over for_each_strided_x4) and
# gpu_engine_test (MultiStepGraphsDecodeAsOneStepGraphs; GpuBatch with 5 steps per graph); then the 7B
# decode at 256 with 1 and 8 steps per graph replay (`--graph-steps 1,8`, one engine each): bf16 first
# and last, q4_0, int8 (classifier int8); and q4_0 with decode attention's minimum chunk varied, with
# every key of a chunk pulled into L1 before pdl_wait (CTXLAB_ATTN_EARLY_STEPS=8) and the default 2.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_quant_test gpu_engine_test
grep -E "Argmax|MultiStep" "$OUT/gpu_quant_test.txt" "$OUT/gpu_engine_test.txt" | head -8
CONTEXTS=256 decode_7b bf16 50 none --graph-steps 1,8
CONTEXTS=256 decode_7b q4_0 75 q4_0 --graph-steps 1,8
# Decode attention at 256 keys in one wave beside the qkv GEMV: min chunks 64 and 80 (the bench's
# 257..320 keys in 4-5 and 4 chunks: 128-160 blocks for 132 SMs), 128 and 320 (one chunk, no combine)
# against 32 (6 chunks, 192 blocks).
for steps in 8 2; do
  CTXLAB_ATTN_EARLY_STEPS=$steps CONTEXTS=256 decode_7b "q4_0_early$steps" 75 q4_0 --graph-steps 8 --decode-min-chunk 32,64,80,128,320
done
CONTEXTS=256 decode_7b int8_lm_head 75 int8:lm_head=true --graph-steps 1,8
CONTEXTS=256 decode_7b bf16_again 50 none --graph-steps 1,8
