#!/usr/bin/env bash
# One device call (< 120 s): KV compression composed with KIVI KV (branch kivicompress, issue 8).
#  1. gpu_engine_test: the new GpuKiviCompress* tests (GPU engine vs the CPU engine with the same kv +
#     kv_quant, codes shrinking with the kept entries, graph decode, refusals) and the earlier engine
#     tests over the changed KIVI storage (codes that grow with the entries) and compression
#     (GpuKiviEngine*, GpuKvEngine*, GpuKvCompress*, GpuMemory*).
#  2. gpu_attention_test's KIVI kernel tests (the kernels now address codes by code_rows).
#  3. experiments/configs/gpu_memory_scaling.ini reduced to kivi8_int8w and l2norm_kivi8_int8w at batch 1,
#     contexts 8k, 16k, 32k (stop_at_oom; CONTEXTS=8192,16384,32768,65536 adds 64k, which needs a longer
#     RUN_TIMEOUT) into $OUT/kivicompress.db. paged_l2norm_int8w is in bench/RESULTS.md already.
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_engine_test gpu_attention_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_kivicompress.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
#         Logs under $OUT; a short summary on stdout. TEST_TIMEOUT / RUN_TIMEOUT bound the parts.
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
OUT=${OUT:-$(mktemp -d)}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_engine_test (KIVI, compression, memory)"
start=$SECONDS
timeout "${TEST_TIMEOUT:-40}" "$repo/.device/run" gpu_engine_test --gtest_brief=1 \
  --gtest_filter='*KiviCompress*:*GpuKiviEngine*:*GpuKvEngine*:*GpuKvCompress*:*GpuMemory*' \
  > "$OUT/gpu_engine_test.log" 2>&1
echo "exit $? after $((SECONDS - start)) s"
grep -E "FAILED|PASSED|Skipped|tests ran|Failure" "$OUT/gpu_engine_test.log" | head -30
grep -E "kivi int|KV cache bytes|shared with the CPU" "$OUT/gpu_engine_test.log" | head -30
echo "== gpu_attention_test (KIVI kernels)"
start=$SECONDS
timeout "${ATTN_TIMEOUT:-20}" "$repo/.device/run" gpu_attention_test --gtest_brief=1 --gtest_filter='*Kivi*' \
  > "$OUT/gpu_attention_test.log" 2>&1
echo "exit $? after $((SECONDS - start)) s"
grep -E "FAILED|PASSED|tests ran" "$OUT/gpu_attention_test.log" | head -10
# The memory demo's config with three of its settings (its [experiment] and [datasets] as they are).
awk -v keep="${SETTINGS:-kivi8_int8w l2norm_kivi8_int8w}" '
  BEGIN { n = split(keep, k, " "); for (i = 1; i <= n; ++i) want["[setting." k[i] "]"] = 1; on = 1 }
  /^\[/ { on = ($0 ~ /^\[setting\./) ? ($0 in want) : 1 }
  on' "$repo/experiments/configs/gpu_memory_scaling.ini" > "$OUT/kivicompress_memdemo.ini"
# The config names ../shared/...: a working directory whose ../shared is the bundle's.
work=$(mktemp -d) && mkdir -p "$work/main" && ln -s "$repo/.device/shared" "$work/shared" && cd "$work/main"
echo "== ctxlab run (gpu_memory_scaling: ${SETTINGS:-kivi8_int8w l2norm_kivi8_int8w}; batch 1)"
start=$SECONDS
timeout "${RUN_TIMEOUT:-55}" "$repo/.device/run" ctxlab run "$OUT/kivicompress_memdemo.ini" \
  --db "$OUT/kivicompress.db" --set "model=random:$repo/.device/bench_configs/llama2_7b_8layers.json" \
  --set batch_sizes=1 --set "context_lengths=${CONTEXTS:-8192,16384,32768}" "$@" > "$OUT/run.log" 2>&1
echo "exit $? after $((SECONDS - start)) s"
grep -E "not run|rror" "$OUT/run.log" | head -20
"$repo/.device/run" ctxlab export --experiment gpu_memory_scaling --format jsonl --db "$OUT/kivicompress.db" \
  > "$OUT/export.jsonl" 2>&1
"$repo/.device/run" ctxlab ls --db "$OUT/kivicompress.db" > "$OUT/ls.txt" 2>&1
cat "$OUT/ls.txt"
