#!/usr/bin/env bash
# Nsight Compute (--set full) on decode attention at short context as the engine launches it: the
# 8-layer Llama-2-7B shape in bf16 (decode attention does not depend on the weights' format), 256-key
# prompt, RoPE and the KV write fused into the launch, 6 split-KV chunks of at least 32 keys. Layers 0
# and 1 of the second decode step (the first 8 launches are the warm-up's first step). Each kernel is
# replayed alone, without the overlap programmatic dependent launch gives in the graph: the stall
# reasons say where a block's time goes (the fence and counter of the split-KV combine, the K/V loads,
# the RoPE'd q). Report in $OUT/ncu_attention_256.txt, a summary on stdout.
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
NCU=$(ncu_path)
timeout ${NCU_TIMEOUT:-150} .device/run exec "$NCU" --kernel-name regex:attention_partial --launch-skip 8 --launch-count 2 \
  --set full --import-source no .device/bin/ctxlab bench gpu-decode --model $M8 --context 256 --tokens 3 --rounds 1 \
  --no-stages --quant none --copy-mib 64 > "$OUT/ncu_attention_256.txt" 2>&1
echo "== ncu attention at 256: exit $?"
grep -E "  void|attention_partial|Duration|DRAM Throughput|L2 Hit Rate  |Achieved Occupancy|Grid Size|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Stall|stall|cycles being stalled|Elapsed Cycles|SM Frequency" \
  "$OUT/ncu_attention_256.txt" | sed -E 's/ +/ /g' | head -90
