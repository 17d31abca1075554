#!/usr/bin/env bash
# Nineteenth session, second call: the embedding kernel with 16-byte loads (the 7B's 4096-wide row in
# one DRAM round trip instead of 16 dependent ones) and the decode loop shared by the single and
# batched paths. gpu_engine_test, then the 7B decode at 256, this build and the first call's build
# (.device/ctxlab_base.xz) alternating: bf16, q4_0; then the q4_0 kernel timeline of this build.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh &&
#   cp /tmp/ctxlab_base.xz .device/  (the first call's stripped ctxlab, xz -1)
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs gpu_engine_test
unpack_ctxlab ctxlab_base
for q in none q4_0; do
  CONTEXTS=256 decode_7b "${q}_new" 75 "$q"
  CTXLAB_PROG=ctxlab_base CONTEXTS=256 decode_7b "${q}_base" 75 "$q"
done
log="$OUT/timeline_q4_0.txt" start=$SECONDS
((SECONDS + 80 < ${LIMIT_S:-570})) && timeout 90 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant q4_0 > "$log" 2>&1
echo "== timeline 7B q4_0: exit $? after $((SECONDS - start)) s"
grep -E "^ms/token|^\| [a-z_]|rror" "$log" | head -40
