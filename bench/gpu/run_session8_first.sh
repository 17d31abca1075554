#!/usr/bin/env bash
# The eighth 2026-12-06 session's first call (< 240 s): KIVI with one query head per block, P.V on
# the codes as they are (P times each value block's scale and midpoint in the B fragments' idle
# columns, kivi_pv_half_columns; the default) against the former fp16 FMA per code pair
# (CTXLAB_KIVI_COLUMNS=0), in one call: gpu_attention_test in full (MmaSoftmax's one-head rescale
# changed for every tensor-core pass), the KIVI engine tests, issue 8's decode attention at 32k with
# each, and decode attention at 1k (the 7B decode step's attention) for the next step.
# Here: BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== gpu_attention_test (all cases)"
timeout 150 .device/run gpu_attention_test --gtest_brief=1 > "$OUT/gpu_attention_test.txt" 2>&1
echo "rc $?"
grep -E "FAILED|Failure|PASSED|tests ran" "$OUT/gpu_attention_test.txt" | head -12
for v in default tensor-cores tensor-cores-registers tensor-cores-ring2 tensor-cores-ring3 cuda-cores; do
  echo "worst KIVI $v: $(grep -E " $v: max" "$OUT/gpu_attention_test.txt" | awk '{print $NF}' | sort -g | tail -1)"
done
kivi_engine_checks
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
for round in 1 2; do
  kivi_bench "MHA columns ($round)" --kivi-bits 4,8
  CTXLAB_KIVI_COLUMNS=0 kivi_bench "MHA former ($round)" --kivi-bits 4,8
done
kivi_bench "GQA" --kv-heads 8 --kivi-bits 4
echo "== decode attention at 1k, MHA 32 x 128 (CUDA cores, then tensor cores)"
timeout 30 .device/run ctxlab bench gpu-attention --context 1024 --splits 0,4,8,16,32 --copy-mib 512 > "$OUT/bench_1k.txt" 2>&1
grep -E "^\| [0-9]|copy bandwidth" "$OUT/bench_1k.txt" | head -12
timeout 30 .device/run ctxlab bench gpu-attention --context 1024 --splits 0,4,8,16,32 --tensor-cores 1 --copy-mib 512 > "$OUT/bench_1k_tc.txt" 2>&1
grep -E "^\| [0-9]" "$OUT/bench_1k_tc.txt" | head -12
NCU_TIMEOUT=60 bash bench/gpu/profile_kivi.sh 2>&1 | head -30
