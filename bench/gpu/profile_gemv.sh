#!/usr/bin/env bash
# Nsight Compute (--set full) on the quantized decode GEMV as `ctxlab bench gpu-decode --quant Q`'s
# per-format table launches it (measure_gemv: 240 launches per matrix, in the order q_proj, o_proj,
# gate_proj, down_proj): SKIPS picks launches (0: q_proj [4096, 4096], 740: down_proj [4096, 11008]).
# Reports under $OUT (ncu_Q_SKIP.txt), a few lines on stdout.
# Here: BUILD=build BUNDLE_TESTS="" bash scripts/device_bundle.sh; device: QUANTS="int8 q4_0" bash bench/gpu/profile_gemv.sh
. "$(dirname "$0")/common.sh"
NCU=$(ncu_path)
for q in ${QUANTS:-int8 q4_0}; do
  for skip in ${SKIPS:-0 740}; do
    timeout 60 .device/run exec "$NCU" --kernel-name regex:quant_gemv --launch-skip "$skip" --launch-count 1 --set full \
      --import-source no .device/bin/ctxlab bench gpu-decode --model $M8 --context 256 --tokens 2 --rounds 1 --no-stages \
      --quant "$q" > "$OUT/ncu_${q}_$skip.txt" 2>&1
    echo "== $q launch $skip: exit $?"
    grep -E "  void|Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Issued Warp Per|Eligible Warps|stalled|L2 Hit|Grid Size" \
      "$OUT/ncu_${q}_$skip.txt" | head -16
  done
done
