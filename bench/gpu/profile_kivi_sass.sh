#!/usr/bin/env bash
# Where the KIVI int4 MHA decode kernel's issue slots go, instruction by instruction: its SASS
# (cuobjdump, $OUT/sass_kivi_*.txt) and Nsight Compute's source counters for one launch at 32k
# (MHA 32/32, head_dim 128, group 32, residual 128: per SASS instruction the executed count and the
# warp stall samples, $OUT/ncu_kivi_src_*.csv). Each run named by a label, with an environment
# variable to set if a switch is to be compared: `profile_kivi_sass.sh LABEL[=VAR=VALUE] ...` (the
# eighth session's working build took columns=CTXLAB_KIVI_COLUMNS=1 former=CTXLAB_KIVI_COLUMNS=0).
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
NCU=$(ncu_path)
CUOBJDUMP=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
.device/run exec true  # unpacks bin/ and lib/
"$CUOBJDUMP" -sass -arch sm_90a .device/bin/ctxlab 2>/dev/null |
  awk '/Function : .*kivi_attention_kernelILi4ELb1ELi1ELi4ELb1ELi2E/{p=1} /Function : /&&!/kivi_attention_kernelILi4ELb1ELi1ELi4ELb1ELi2E/{p=0} p' \
  > "$OUT/sass_kivi_mha_ring2.txt"
echo "SASS lines: $(wc -l < "$OUT/sass_kivi_mha_ring2.txt")"
for spec in "$@"; do
  label=${spec%%=*} env=${spec#*=}
  [[ "$spec" == *=* ]] || env=CTXLAB_PROFILE_LABEL=$label  # no switch: a harmless variable
  rep="$OUT/ncu_kivi_$label"
  env "$env" timeout ${NCU_TIMEOUT:-90} .device/run exec "$NCU" --kernel-name "regex:kivi_attention_kernel" --launch-skip 3 \
    --launch-count 1 --set full --import-source no -o "$rep" .device/bin/ctxlab bench gpu-attention --context 32768 \
    --kivi-bits 4 --rounds 1 --copy-mib 64 > "$OUT/ncu_kivi_run_$label.txt" 2>&1
  echo "== $label: exit $?"
  "$NCU" --import "$rep.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_kivi_src_$label.csv" 2>&1
  "$NCU" --import "$rep.ncu-rep" --page details --section InstructionStats --section WarpStateStats --section SpeedOfLight \
    > "$OUT/ncu_kivi_details_$label.txt" 2>&1
  grep -E "Duration|Executed Instructions |Issue Slots Busy|Warp Cycles Per Issued" "$OUT/ncu_kivi_details_$label.txt" | sed -E 's/ +/ /g' | head -6
  echo "source csv lines: $(wc -l < "$OUT/ncu_kivi_src_$label.csv")"
  rm -f "$rep.ncu-rep"
done
