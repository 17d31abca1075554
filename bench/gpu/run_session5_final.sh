#!/usr/bin/env bash
# Fifth 2026-12-06 session, one call (< 560 s), run at commit a6a109e (its GEMV switches are removed
# from main since):
#  1. bench/gpu/run_qgemv_ring.sh: gpu_quant_test, 8-layer decode per GEMV configuration (ring size
#     and warps) and format, decode attention at 1k with and without tensor cores;
#  2. the 7B at 1k: bf16, then int8 / q4_0 / nf4 each with its fastest configuration of step 1;
#  3. the memory demo's KIVI settings (bench/gpu/run_kivicompress.sh: its engine and KIVI attention
#     tests on the merged main, then l2norm 0.5 + KIVI int8 + int8 weights at 16k and 32k, as far as the call's time goes).
# Here: BUILD=build BUNDLE_DATASETS=1 BUNDLE_TESTS="gpu_engine_test gpu_attention_test gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
bash bench/gpu/run_qgemv_ring.sh | tee $OUT/ring.txt
best_config() {  # the RING:WARPS configuration with the lowest 8-layer ms/token for format $1
  awk -v q="$1" '/^== 8-layer/ { cur = ($3 == q) ? $5 : "" }
    cur != "" && /^\| 8-layer/ { split($0, f, "|"); ms = f[8] + 0; if (best == "" || ms < bms) { best = cur; bms = ms } }
    END { print (best == "" ? "48:16" : best) }' $OUT/ring.txt
}
for q in none int8 q4_0 nf4; do
  c=$([ $q = none ] && echo 48:16 || best_config $q)
  CTXLAB_QGEMV_RING_KIB=${c%%:*} CTXLAB_QGEMV_WARPS=${c##*:} timeout 100 .device/run ctxlab bench gpu-decode --model $M7 --context 1024 --tokens 64 --rounds 2 --copy-mib 512 --no-stages --quant $q > $OUT/d32.txt 2>&1
  echo "== 7B $q config $c exit $? at ${SECONDS}s"; grep -E "^\| llama|^\| [a-z_]+ \[|rror" $OUT/d32.txt | sed -E 's/^\| llama[^|]*\|/| 7B |/'
done
SETTINGS="l2norm_kivi8_int8w" CONTEXTS=${DEMO_CONTEXTS:-16384,32768} ATTN_TIMEOUT=1 RUN_TIMEOUT=$((510 - SECONDS)) bash bench/gpu/run_kivicompress.sh
