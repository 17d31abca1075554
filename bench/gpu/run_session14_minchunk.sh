#!/usr/bin/env bash
# Fourteenth session, last call: decode attention with at least 32 keys per split-KV chunk
# (AttentionParams::min_chunk, GpuEngineOptions::decode_min_chunk). The attention call of this session
# (run_session14_attn.sh) found the 7B's 32 heads at 256 keys 18.3 us in 64 chunks against 8.4 us in 8,
# and the engine's chunk count follows its capacity.
# 1. gpu_attention_test (new: the _minchunk32 cases), gpu_engine_test and gpu_quant_test in full.
# 2. The attention kernel at 256 and 1024 keys in 17 and 64 chunks, without and with the minimum.
# 3. The 7B q4_0 decode at 256 and 4096 (an engine of capacity 4161: 64 chunks) without and with it.
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_attention_test gpu_engine_test gpu_quant_test
grep -E "minchunk32" "$OUT/gpu_attention_test.txt" | head -8
for mc in 0 32; do
  echo "== decode attention, --min-chunk $mc"
  timeout 40 .device/run ctxlab bench gpu-attention --context 256,1024 --splits 17,64 --min-chunk $mc --copy-mib 512 \
    > "$OUT/attn_mc$mc.txt" 2>&1
  echo "exit $?"
  grep -E "^\| [0-9]" "$OUT/attn_mc$mc.txt"
done
for mc in 0 32; do
  echo "== 7B q4_0, --decode-min-chunk $mc"
  timeout 100 .device/run ctxlab bench gpu-decode --model "$M7" --context 256,4096 --tokens 64 --rounds 2 --copy-mib 512 \
    --no-stages --quant q4_0 --decode-min-chunk $mc > "$OUT/d7b_mc$mc.txt" 2>&1
  echo "exit $?"
  grep -E "^\| llama" "$OUT/d7b_mc$mc.txt" | sed 's/| llama L=32 d=4096 heads=32.32 hd=128 ff=11008 vocab=32000 params=6738415616//'
done
