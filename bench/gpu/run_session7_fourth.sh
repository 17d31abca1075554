#!/usr/bin/env bash
# (Its CTXLAB_KIVI_TILE comparisons need the passes main had up to commit 0b44605; since then the
# 32-key tiles with P in fp16 are the only tensor-core KIVI pass and the switch is gone.)
# The seventh 2026-12-06 session's fourth call (< 200 s): KIVI's 32-key tensor-core tiles with P in fp16
# (one P.V mma per V tile; the default) against P as a high and a low part (CTXLAB_KIVI_TILE=32split)
# and the 16-key tiles (CTXLAB_KIVI_TILE=16), in one call: gpu_attention_test's KIVI cases and the KIVI
# engine tests with the default, issue 8's decode attention at 32k with each pass, and Nsight
# Compute's stall reasons for the default (bench/gpu/profile_kivi.sh).
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
kivi_attention_checks "32-key tiles, P in fp16"
kivi_engine_checks
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
for round in 1; do
  kivi_bench "MHA P fp16 ($round)" --kivi-bits 4,8
  CTXLAB_KIVI_TILE=32split kivi_bench "MHA P hi+lo ($round)" --kivi-bits 4
  CTXLAB_KIVI_TILE=16 kivi_bench "MHA 16-key ($round)" --kivi-bits 4
  kivi_bench "GQA P fp16 ($round)" --kv-heads 8 --kivi-bits 4,8
  CTXLAB_KIVI_TILE=32split kivi_bench "GQA P hi+lo ($round)" --kv-heads 8 --kivi-bits 4,8
  CTXLAB_KIVI_TILE=16 kivi_bench "GQA 16-key ($round)" --kv-heads 8 --kivi-bits 4
done
kivi_bench "GQA P fp16 ring2" --kv-heads 8 --kivi-bits 4 --kivi-stages 2 --splits 32,40,48
kivi_bench "GQA P fp16 ring3" --kv-heads 8 --kivi-bits 4 --kivi-stages 3 --splits 24,32
bash bench/gpu/profile_kivi.sh
