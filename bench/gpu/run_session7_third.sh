#!/usr/bin/env bash
# (Its CTXLAB_KIVI_TILE comparisons need the passes main had up to commit 0b44605; since then the
# 32-key tiles with P in fp16 are the only tensor-core KIVI pass and the switch is gone.)
# The seventh 2026-12-06 session's third call (< 300 s): KIVI's 32-key tiles with qm summed in two mma
# chains and added after the scores (off the scores' critical path): gpu_attention_test's KIVI cases,
# issue 8's decode attention at 32k against the 16-key tiles (CTXLAB_KIVI_TILE=16) in the same call,
# Nsight Compute's stall reasons for the int4 kernel (bench/gpu/profile_kivi.sh), and the 7B memory
# demo's batches at 8k for paged + int8 weights (batched decode now on the batched quantized GEMV).
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
kivi_attention_checks "32-key tiles, qm after the scores"
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
kivi_bench "MHA tile32" --kivi-bits 4,8
CTXLAB_KIVI_TILE=16 kivi_bench "MHA tile16" --kivi-bits 4
kivi_bench "GQA tile32" --kv-heads 8 --kivi-bits 4,8
CTXLAB_KIVI_TILE=16 kivi_bench "GQA tile16" --kv-heads 8 --kivi-bits 4
bash bench/gpu/profile_kivi.sh
CONTEXT_SETTINGS= BATCH_SETTINGS=paged_int8w BATCHES=2,4,8 RUN_TIMEOUT=100 bash bench/gpu/run_memdemo7b.sh
