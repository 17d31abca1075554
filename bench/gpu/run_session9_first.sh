#!/usr/bin/env bash
# Ninth 2026-12-06 session, first call, on branch session9 = main + kivi_simplify + q4lop3 (both
# written in the eighth session after its device time was spent): gpu_attention_test in full, the KIVI
# engine tests, gpu_quant_test; KIVI decode attention at 32k with this build and main's (the one-head
# biased-code path) in the same call; the 7B's q4_0 decode with each; the q4_0 GEMV's LOP3 count.
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash
# scripts/device_bundle.sh, then main's stripped ctxlab as .device/ctxlab_main.xz (xz -6; bin.tar.xz
# recompressed at -6 too, to stay under the carry limit).
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_main
run_test_programs gpu_attention_test gpu_quant_test
kivi_engine_checks
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
for round in 1 2; do
  kivi_bench "MHA session9 ($round)" --kivi-bits 4
  CTXLAB_PROG=ctxlab_main kivi_bench "MHA main ($round)" --kivi-bits 4
  kivi_bench "GQA session9 ($round)" --kv-heads 8 --kivi-bits 4,8
  CTXLAB_PROG=ctxlab_main kivi_bench "GQA main ($round)" --kv-heads 8 --kivi-bits 4
done
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
