#!/usr/bin/env bash
# Nsight Compute (--set full) on the kernels of one batch-1 decode step as the CUDA graph runs them
# (8-layer Llama-2-7B shape, 1k context): layer 0 of the second step, i.e. the fused RMSNorm + qkv
# GEMV, qkv_rope, decode attention, o_proj, RMSNorm + gate_up + SwiGLU and down_proj. For each QUANT:
# the GEMV table's launches (4 matrices x 240, quantized formats only) and the prefill's qkv_rope
# launches are skipped first. Reports under $OUT (ncu_decode_Q.txt), a summary per kernel on stdout.
# Here: BUILD=build BUNDLE_TESTS="" bash scripts/device_bundle.sh; device: QUANTS="int8 q4_0" bash bench/gpu/profile_decode.sh
. "$(dirname "$0")/common.sh"
NCU=$(ncu_path)
for q in ${QUANTS:-int8 q4_0}; do
  table=$([ "$q" = none ] && echo 0 || echo 960)
  regex=$([ "$q" = none ] && echo "gemv_kernel|attention_partial|qkv_rope" || echo "quant_gemv_kernel|attention_partial|qkv_rope")
  timeout ${NCU_TIMEOUT:-90} .device/run exec "$NCU" --kernel-name "regex:$regex" --launch-skip $((table + 8 + 48)) \
    --launch-count 6 --set full --import-source no .device/bin/ctxlab bench gpu-decode --model $M8 --context 1024 \
    --tokens 3 --rounds 1 --no-stages --quant "$q" > "$OUT/ncu_decode_$q.txt" 2>&1
  echo "== $q: exit $?"
  grep -E "^  [a-z_]+.*\(|  void|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Grid Size|Block Size|Issue Slots Busy|No Eligible|L2 Hit Rate  " \
    "$OUT/ncu_decode_$q.txt" | sed -E 's/ +/ /g' | head -80
done
