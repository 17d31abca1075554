#!/usr/bin/env bash
# (Its CTXLAB_KIVI_TILE comparisons need the passes main had up to commit 0b44605; since then the
# 32-key tiles with P in fp16 are the only tensor-core KIVI pass and the switch is gone.)
# The seventh 2026-12-06 session's second call (< 480 s):
#  1. KIVI tensor-core tiles with one softmax update per 32 keys, the query's fp16 fragments kept in
#     shared memory and qm summed by the tensor cores (KiviQuery, the default) against the former pass
#     (CTXLAB_KIVI_TILE=16) in the same process image: gpu_attention_test's KIVI cases with each, the
#     KIVI engine tests, issue 8's decode attention at 32k (MHA 32/32 and GQA 32/8, head_dim 128,
#     group 32, residual 128, 4 and 8 bits) with each, and split sweeps of the new int4 ring;
#  2. Llama-2-7B batch-1 decode at 1k: bf16, int8, and int8 with lm_head quantized too;
#  3. the 7B memory demo's KIVI rows under 20 GiB now that KIVI prefill runs on the flash kernels and
#     batched decode on the batched GEMV: l2norm 0.5 + KIVI int8 + int8 weights at 8k..64k; KIVI int8 +
#     int8 weights at batch 2 and 4 (8k), and at 4, 6, 8 with prefill_chunk 512 (a smaller bf16 ring).
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
kivi_attention_checks "32-key tiles (default)"
CTXLAB_KIVI_TILE=16 kivi_attention_checks "16-key tiles (CTXLAB_KIVI_TILE=16)"
kivi_engine_checks
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
kivi_bench "MHA tile32" --kivi-bits 4,8
CTXLAB_KIVI_TILE=16 kivi_bench "MHA tile16" --kivi-bits 4,8
kivi_bench "GQA tile32" --kv-heads 8 --kivi-bits 4,8
CTXLAB_KIVI_TILE=16 kivi_bench "GQA tile16" --kv-heads 8 --kivi-bits 4,8
kivi_bench "MHA tile32 ring2" --kivi-bits 4 --tensor-cores 1 --kivi-stages 2 --splits 8,12,16,24
kivi_bench "GQA tile32 ring3" --kv-heads 8 --kivi-bits 4 --kivi-stages 3 --splits 16,24,32,48
kivi_bench "MHA tile32 ring3" --kivi-bits 4 --tensor-cores 1 --kivi-stages 3 --splits 8,12,16
echo "== Llama-2-7B decode at 1k (64 tokens x 2 rounds)"
for q in none int8 int8:lm_head=true; do
  timeout 100 .device/run ctxlab bench gpu-decode --model $M7 --context 1024 --tokens 64 --rounds 2 --copy-mib 512 \
    --no-stages --quant $q > "$OUT/d7b_${q//[:=]/_}.txt" 2>&1
  echo "== 7B $q exit $? at ${SECONDS}s"; grep -E "^\| llama|^\| [a-z_]+ \[|rror" "$OUT/d7b_${q//[:=]/_}.txt" | head -4
done
CONTEXT_SETTINGS=l2norm_kivi8_int8w CONTEXTS=8192,16384,32768,65536 BATCH_SETTINGS=kivi8_int8w BATCHES=2,4 \
  RUN_TIMEOUT=150 bash bench/gpu/run_memdemo7b.sh
# KIVI's bf16 ring per slot holds residual + group + prefill_chunk rows (2208 on the 7B by default,
# 1.16 GB a slot): prompts in chunks of 512 leave 672 rows.
CONTEXT_SETTINGS= BATCH_SETTINGS=kivi8_int8w BATCHES=4,6,8 BATCH_EXTRA=prefill_chunk=512 RUN_TIMEOUT=120 \
  bash bench/gpu/run_memdemo7b.sh
