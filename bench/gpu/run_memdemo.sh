#!/usr/bin/env bash
# One device call: the GPU memory-scaling demo (issue 8). gpu_engine_test (the growing paged pool,
# compression bounding it, the memory limit's oom, and every earlier engine test over the changed KV
# storage), then experiments/configs/gpu_memory_scaling.ini into $OUT/memdemo.db (copied back; tables
# and plots are made from it on any machine: ctxlab ls / export / plot).
# Here:   BUILD=build-cuda BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_memdemo.sh [--set KEY=VALUE ...]   (run tool, carry [".device"], kind nvidia-h100-x1)
#         SKIP_TESTS=1 leaves gpu_engine_test out. The whole config takes about 3 minutes on the H100
#         (each trial that builds an engine uploads the weights again: 5-7 s bf16, 3-4 s int8; the
#         first call's 125 s limit stopped it at trial 66 of 112, bench/RESULTS.md).
set -uo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
OUT=${OUT:-$(mktemp -d)}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [[ "${SKIP_TESTS:-0}" != 1 ]]; then
  echo "== gpu_engine_test"
  start=$SECONDS
  timeout "${TEST_TIMEOUT:-120}" "$repo/.device/run" gpu_engine_test --gtest_brief=1 > "$OUT/gpu_engine_test.log" 2>&1
  echo "exit $? after $((SECONDS - start)) s"
  grep -E "FAILED|PASSED|Skipped|tests ran" "$OUT/gpu_engine_test.log" | head -30
fi
# The config names ../shared/...: a working directory whose ../shared is the bundle's.
work=$(mktemp -d) && mkdir -p "$work/main" && ln -s "$repo/.device/shared" "$work/shared" && cd "$work/main"
echo "== ctxlab run experiments/configs/gpu_memory_scaling.ini $*"
start=$SECONDS
timeout "${RUN_TIMEOUT:-300}" "$repo/.device/run" ctxlab run "$repo/experiments/configs/gpu_memory_scaling.ini" \
  --db "$OUT/memdemo.db" --set "model=random:$repo/.device/bench_configs/llama2_7b_8layers.json" "$@" > "$OUT/run.log" 2>&1
echo "exit $? after $((SECONDS - start)) s"
grep -E "not run|^experiment |rror" "$OUT/run.log" | head -40
"$repo/.device/run" ctxlab ls --db "$OUT/memdemo.db" > "$OUT/ls.txt" 2>&1
cat "$OUT/ls.txt"
