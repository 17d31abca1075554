#!/usr/bin/env bash
# Branch ropeearly (written in the nineteenth session; run and merged in the twentieth, bench/RESULTS.md): with RoPE fused into
# decode attention, each thread computes its element's cos/sin (inv_freq load, cosf, sinf) before
# pdl_wait() instead of after it (kernels/attention_kernels.cu, device_math.cuh rope_angle/rope_apply),
# and the wide kernels index their RoPE elements with head_dim known at compile time (shifts, not 64-bit
# divisions, after the wait).
# The same arithmetic: the fused launch must still match the separate qkv_rope launch bit for bit
# (GpuFusedRope). Nsight Compute (bench/RESULTS.md, nineteenth session) found decode attention at 256
# keys bound by each warp's chain of ~1,500 instructions at 7.4 cycles each, 8% of issue slots used.
# gpu_engine_test and gpu_attention_test, then the 7B decode at 256 and 1k, this build and main's
# (.device/ctxlab_main.xz) alternating: bf16, q4_0; then the q4_0 timeline of this build and Nsight
# Compute on its decode attention at 256 keys (profile_attention_256.sh).
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh, plus
#   main's stripped ctxlab as .device/ctxlab_main.xz (xz -T2 -1)
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_engine_test gpu_attention_test
unpack_ctxlab ctxlab_main
for q in q4_0 none; do
  CONTEXTS=256,1024 decode_7b "${q}_ropeearly" 80 "$q"
  CTXLAB_PROG=ctxlab_main CONTEXTS=256,1024 decode_7b "${q}_main" 80 "$q"
done
log="$OUT/timeline_q4_0.txt" start=$SECONDS
((SECONDS + 80 < ${LIMIT_S:-570})) && timeout 90 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant q4_0 > "$log" 2>&1
echo "== timeline 7B q4_0: exit $? after $((SECONDS - start)) s"
grep -E "^ms/token|^\| [a-z_]|rror" "$log" | head -40
# Where each attention warp still waits, on this build (SASS instructions with the most stall samples).
((SECONDS + 60 < ${LIMIT_S:-570})) && bash "$(dirname "$0")/profile_attention_256.sh"
