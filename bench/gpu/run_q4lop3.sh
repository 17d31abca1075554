#!/usr/bin/env bash
# Branch q4lop3 (eighth 2026-12-06 session, written after its device time was spent; not yet run on a
# GPU): q4_0's nibble mask and bf16 magic in one LOP3 (mma::and_or; as C++ `&` and `|` ptxas emits two,
# as it did in the KIVI pass, bench/RESULTS.md eighth session), against main's binary in the same call:
# gpu_quant_test, then the Llama-2-7B shape's batch-1 decode at 1k, bf16 and q4_0 with each binary
# (ms/token and the GEMV table), and the q4_0 GEMV kernel's LOP3 count in each.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh on the branch, then
# xz -c <main's build>/experiments/ctxlab > .device/ctxlab_main.xz
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_main
echo "== gpu_quant_test"
timeout 150 .device/run gpu_quant_test --gtest_brief=1 > "$OUT/gpu_quant_test.txt" 2>&1
echo "rc $?"
grep -E "FAILED|Failure|PASSED|tests ran" "$OUT/gpu_quant_test.txt" | head -12
for round in 1 2; do
  for run in ctxlab:none ctxlab:q4_0 ctxlab_main:q4_0; do
    prog=${run%%:*} q=${run##*:}
    timeout 100 .device/run "$prog" bench gpu-decode --model "$M7" --context 1024 --tokens 64 --rounds 2 --copy-mib 512 \
      --no-stages --quant "$q" > "$OUT/d7b_${prog}_${q}_$round.txt" 2>&1
    echo "== 7B $prog $q round $round: exit $?"
    grep -E "^\| llama|^\| [a-z_]+ \[|rror" "$OUT/d7b_${prog}_${q}_$round.txt"
  done
done
CUOBJDUMP=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
for prog in ctxlab ctxlab_main; do
  "$CUOBJDUMP" -sass -arch sm_90a ".device/bin/$prog" 2>/dev/null |
    awk '/Function : .*quant_gemv_kernel.*Q4_0Format/{p=1} /Function : /&&!/quant_gemv_kernel.*Q4_0Format/{p=0} p' > "$OUT/sass_q4_0_$prog.txt"
  echo "$prog q4_0 GEMV kernels: $(grep -c 'Function :' "$OUT/sass_q4_0_$prog.txt"), LOP3 lines: $(grep -c LOP3 "$OUT/sass_q4_0_$prog.txt")"
done
