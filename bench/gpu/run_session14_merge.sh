#!/usr/bin/env bash
# Fourteenth session, the last call: chunks without keys take no part in the split-KV merge (they
# return at once; the last of the chunks that hold keys combines those), so min_chunk's empty splits
# cost a launch slot each instead of a partial row and an arrival.
# 1. gpu_attention_test, gpu_engine_test and gpu_quant_test in full.
# 2. The attention kernel at 256 and 1024 keys in 8, 17 and 64 chunks, with the 32-key minimum.
# 3. The 7B q4_0 decode at 256 in an engine of capacity 4161 (64 chunks), with the minimum (the
#    previous call: 2.424 ms/token without it, 2.327 with it before this change).
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_attention_test gpu_engine_test gpu_quant_test
echo "== decode attention, --min-chunk 32"
timeout 40 .device/run ctxlab bench gpu-attention --context 256,1024 --splits 8,17,64 --min-chunk 32 --copy-mib 512 \
  > "$OUT/attn_mc32.txt" 2>&1
echo "exit $?"
grep -E "^\| [0-9]" "$OUT/attn_mc32.txt"
echo "== 7B q4_0, --decode-min-chunk 32, capacity 4161"
timeout 70 .device/run ctxlab bench gpu-decode --model "$M7" --context 256,4096 --tokens 64 --rounds 2 --copy-mib 512 \
  --no-stages --quant q4_0 --decode-min-chunk 32 > "$OUT/d7b_mc32.txt" 2>&1
echo "exit $?"
grep -E "^\| llama" "$OUT/d7b_mc32.txt" | sed 's/| llama L=32 d=4096 heads=32.32 hd=128 ff=11008 vocab=32000 params=6738415616//'
