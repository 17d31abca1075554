#!/usr/bin/env bash
# One device call (< 120 s): the cheap per-step compression of TOVA and H2O (issue 8, kvfast). The KV
# compression tests of gpu_engine_test (*GpuKv*: the one-eviction path vs the general selection and
# the CPU's rule on scores with ties, the kernels vs the CPU plugins, the engine's kept positions and
# logits over decode steps vs the CPU engine, graph decode), then decode at 32k context on the
# Llama-2-7B shape uncompressed and with tova/h2o/snapkv at keep_ratio 0.25 (tova and h2o re-compress
# every decode step: one eviction per head and layer per step).
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_kvfast.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
M=random:.device/bench_configs/llama2_7b.json
CONTEXT=${CONTEXT:-32768}
KVS=${KVS:-"none;tova:keep_ratio=0.25;h2o:keep_ratio=0.25;snapkv:keep_ratio=0.25"}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_engine_test --gtest_filter='*GpuKv*'"
timeout 40 .device/run gpu_engine_test --gtest_filter='*GpuKv*' > "$OUT/kv_tests.txt" 2>&1
echo "exit $?"
grep -E "FAILED|Failure|Expected|Which is|PASSED|error|tests ran" "$OUT/kv_tests.txt" | head -30
grep -E "^\[       OK \]" "$OUT/kv_tests.txt" | grep -E "EvictOne|GpuKvEngine|Graph" | head -20
echo "== bench gpu-decode --context $CONTEXT --kv '$KVS'"
# Line-buffered: a spec's row is kept even if the time limit cuts the later specs.
timeout 75 stdbuf -oL .device/run ctxlab bench gpu-decode --model $M --context "$CONTEXT" --tokens 32 --rounds 1 \
  --copy-mib 512 --no-stages --kv "$KVS" > "$OUT/bench.txt" 2>&1
echo "exit $?"
grep -E "^device|^\| llama|error" "$OUT/bench.txt"
