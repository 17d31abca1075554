#!/usr/bin/env bash
# The eighth 2026-12-06 session's third call (< 150 s): the 4-bit KIVI ring pass as it lands (the
# second call's lane offsets and division-free group walk, each nibble mask-and-bias now one LOP3
# (mma::and_or; C++ `&` and `|` gave two), and for one head the codes biased by 1024 on both sides),
# against the former fp16 FMA per code pair for one head (.device/ctxlab_switch.xz, the same build with
# a switch, run with CTXLAB_KIVI_COLUMNS=0), all in one call (the session start's pass was timed in the
# first call; its binary no longer fits the 64 MiB a call carries):
# gpu_attention_test's KIVI cases, the KIVI engine tests, issue 8's decode attention at 32k, and the
# kernel's SASS.
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh, then
# xz -c <the switch build's ctxlab> > .device/ctxlab_switch.xz
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_switch
kivi_attention_checks "as landed"
kivi_engine_checks
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
for round in 1 2; do
  kivi_bench "MHA landed ($round)" --kivi-bits 4,8
  CTXLAB_PROG=ctxlab_switch CTXLAB_KIVI_COLUMNS=0 kivi_bench "MHA former P.V ($round)" --kivi-bits 4
  kivi_bench "GQA landed ($round)" --kv-heads 8 --kivi-bits 4,8
done
kivi_bench "GQA ring2" --kv-heads 8 --kivi-bits 4 --kivi-stages 2 --splits 32,48
CUOBJDUMP=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
"$CUOBJDUMP" -sass -arch sm_90a .device/bin/ctxlab 2>/dev/null |
  awk '/Function : .*kivi_attention_kernelILi4ELb1ELi1ELi4ELb1ELi2E/{p=1} /Function : /&&!/kivi_attention_kernelILi4ELb1ELi1ELi4ELb1ELi2E/{p=0} p' \
  > "$OUT/sass_kivi_mha_ring2.txt"
echo "SASS lines: $(wc -l < "$OUT/sass_kivi_mha_ring2.txt"), LOP3: $(grep -c LOP3 "$OUT/sass_kivi_mha_ring2.txt")"
