#!/usr/bin/env bash
# Nsight Compute on KIVI int4 decode attention at 32k (ctxlab bench gpu-attention, head_dim 128, group 32,
# residual 128, the defaults' kernel): one launch each of MHA 32/32 and GQA 32/8 after warm-up, with
# the warps' stall reasons (cycles per issued instruction spent in each), occupancy and issue
# statistics. Reports under $OUT (ncu_kivi_mha.txt, ncu_kivi_gqa.txt); a summary on stdout.
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh; device: bash bench/gpu/profile_kivi.sh
. "$(dirname "$0")/common.sh"
NCU=$(ncu_path)
for shape in mha:32 gqa:8; do
  name=${shape%%:*} kv=${shape##*:}
  timeout ${NCU_TIMEOUT:-90} .device/run exec "$NCU" --kernel-name "regex:kivi_attention_kernel" --launch-skip 3 \
    --launch-count 1 --section SpeedOfLight --section Occupancy --section LaunchStats --section SchedulerStats \
    --section WarpStateStats --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio" \
    --import-source no .device/bin/ctxlab bench gpu-attention --context 32768 --kv-heads $kv --kivi-bits 4 \
    --rounds 1 --copy-mib 64 > "$OUT/ncu_kivi_$name.txt" 2>&1
  echo "== $name: exit $?"
  grep -E "Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Active Warps Per Scheduler|Eligible Warps" \
    "$OUT/ncu_kivi_$name.txt" | sed -E 's/ +/ /g' | head -14
  grep -E "issue_stalled" "$OUT/ncu_kivi_$name.txt" | sed -E 's/ +/ /g; s/smsp__average_warps_issue_stalled_//; s/_per_issue_active.ratio//' |
    sort -t' ' -k4 -g -r | head -12
done
