#!/usr/bin/env bash
# The eighth 2026-12-06 session's second call (< 200 s): the 4-bit KIVI ring pass with each lane's
# shared-memory offsets computed once (a tile's reads and copies are the lane's offset plus
# constants) and the key groups walked without divisions, against the first call's binary
# (.device/ctxlab_call1.xz: the same passes with the per-read swizzle and per-tile divisions), in one
# call: gpu_attention_test's KIVI cases, the KIVI engine tests, issue 8's decode attention at 32k
# (for one head the codes biased by 1024 on both sides, K as in V, the default, against the former
# fp16 FMA per pair, CTXLAB_KIVI_COLUMNS=0), and the SASS source counters.
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh, then
# xz -c <the first call's ctxlab> > .device/ctxlab_call1.xz
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
unpack_ctxlab ctxlab_call1
kivi_attention_checks "lane offsets"
kivi_engine_checks
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
for round in 1; do
  kivi_bench "MHA offsets columns ($round)" --kivi-bits 4
  CTXLAB_KIVI_COLUMNS=0 kivi_bench "MHA offsets former ($round)" --kivi-bits 4
  CTXLAB_PROG=ctxlab_call1 kivi_bench "MHA call1 columns ($round)" --kivi-bits 4
  CTXLAB_PROG=ctxlab_call1 CTXLAB_KIVI_COLUMNS=0 kivi_bench "MHA call1 former ($round)" --kivi-bits 4
  kivi_bench "GQA offsets ($round)" --kv-heads 8 --kivi-bits 4
  CTXLAB_PROG=ctxlab_call1 kivi_bench "GQA call1 ($round)" --kv-heads 8 --kivi-bits 4
done
kivi_bench "MHA offsets columns (2)" --kivi-bits 4,8
CTXLAB_KIVI_COLUMNS=0 kivi_bench "MHA offsets former (2)" --kivi-bits 4
kivi_bench "GQA offsets ring2" --kv-heads 8 --kivi-bits 4 --kivi-stages 2 --splits 32,48
NCU_TIMEOUT=60 bash bench/gpu/profile_kivi_sass.sh columns=CTXLAB_KIVI_COLUMNS=1
