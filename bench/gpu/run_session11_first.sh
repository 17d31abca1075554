#!/usr/bin/env bash
# The qgemv_xregs_nf4pair patch (merged in the thirteenth session) applied to main (written in the
# eleventh session, which got no device machine): the quantized GEMV's input pieces in registers (xregs) and nf4/fp4 with
# codes=bfloat16 in one tensor-core k slot per weight (kCode4Bf16). gpu_quant_test, one round of the
# 7B's batch-1 decode at 1k per format, gpu_engine_test and gpu_attention_test, a second round, while
# time is left (LIMIT_S). Per format: this build ("new"), the same binary on main's GEMV input paths
# (CTXLAB_QGEMV_X_REGS=0 CTXLAB_QGEMV_STAGE_INPUT=1: "old") and main's binary ("main"); nf4 with
# codes=bfloat16 against nf4's exact path (and main's) in the same call.
# The twelfth session measured xregs' int8 decode only (3.300 against main's 3.305 ms: no gain; see
# bench/RESULTS.md), so the rounds below run nf4 codes=bfloat16 also on the old input paths ("old").
# A 4-bit format's decode run takes more than 30 s (host quantization of the 7B): keep the 60 s timeout.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test gpu_engine_test gpu_attention_test" bash
# scripts/device_bundle.sh, then main's stripped ctxlab as .device/ctxlab_main.xz (xz -6).
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_main
# Ordered by what a short call must not miss: the GEMV tests, one round of timings, then the engine
# and attention tests, then a second round, each only while time is left (LIMIT_S).
limit=${LIMIT_S:-530}
run_test_programs gpu_quant_test
grep -E "codes=bfloat16" "$OUT/gpu_quant_test.txt" | head -24
# decode_round ROUND [CONTEXT [RUNS]]: the 7B's batch-1 decode per format at CONTEXT (1024).
decode_round() {
  local ctx=${2:-1024}
  local runs="int8:new int8:main q4_0:new q4_0:main nf4:codes=bfloat16:new nf4:codes=bfloat16:old nf4:new nf4:main"
  [[ $1 == 1 ]] && runs=${RUNS:-"none:new $runs fp4:codes=bfloat16:new"}  # RUNS: a shorter first round
  [[ -n ${3:-} ]] && runs=$3
  for run in $runs; do
    ((SECONDS < limit)) || { echo "(stopped at $SECONDS s)"; return; }
    local q=${run%:*} v=${run##*:} prog=ctxlab env=()
    [[ $v == old ]] && env=(CTXLAB_QGEMV_X_REGS=0 CTXLAB_QGEMV_STAGE_INPUT=1)
    [[ $v == main ]] && prog=ctxlab_main
    local log="$OUT/d7b_${q//[:=]/_}_${v}_${ctx}_$1.txt"
    env "${env[@]}" timeout 60 .device/run "$prog" bench gpu-decode --model "$M7" --context "$ctx" --tokens 64 \
      --rounds 2 --copy-mib 512 --no-stages --quant "$q" > "$log" 2>&1
    echo "== 7B $q $v context $ctx round $1: exit $?"
    grep -E "^\| llama|^\| [a-z_]+ \[|rror" "$log"
  done
}
decode_round 1
# ENGINE_FILTER / ATTENTION_FILTER (gtest filters, default all) and TEST_S (the time each needs) for a short call.
for t in gpu_engine_test:${ENGINE_FILTER:-*} gpu_attention_test:${ATTENTION_FILTER:-*}; do
  ((SECONDS + ${TEST_S:-110} < limit)) && GTEST_FILTER=${t#*:} run_test_programs ${t%%:*} || echo "(no time for $t at $SECONDS s)"
done
# A short context as gpt-fast measures (a prompt of a few tokens, 200 new): less KV per token.
decode_round 1 256 "none:new int8:new int8:lm_head=true:new q4_0:new q4_0:lm_head=true:new nf4:codes=bfloat16:new"
decode_round 2
