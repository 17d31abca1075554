#!/usr/bin/env bash
# One device call: attention-scored KV compression on the GPU engine (snapkv, h2o, tova; issue 8).
# The KV compression tests of gpu_engine_test (gpu_kv_scores_test.cc: score kernels vs a float64
# reference, kept indices vs the CPU plugins, the engine's kept positions after a prompt vs the CPU
# engine's scores; gpu_kvpress_test.cc: the engine's decode steps and graph decode, and the existing
# l2norm/streaming/random cases, the one-eviction path of per-step tova/h2o), then decode at 32k context on the Llama-2-7B shape uncompressed and
# with snapkv/h2o/tova at keep_ratio 0.25 (one process, one engine per --kv spec): TTFT includes the
# scoring and compression after every prefill chunk (2048 tokens), ms/token the decode steps (h2o and
# tova score and re-compress every step, every = 1). --no-stages: no per-stage table (saves 8 prefills).
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_kvscore.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
M=random:.device/bench_configs/llama2_7b.json
CONTEXT=${CONTEXT:-32768}
KVS=${KVS:-"none;snapkv:keep_ratio=0.25;tova:keep_ratio=0.25;h2o:keep_ratio=0.25"}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_engine_test --gtest_filter='*GpuKv*'"
timeout 80 .device/run gpu_engine_test --gtest_filter='*GpuKv*' > "$OUT/kv_tests.txt" 2>&1
echo "exit $?"
grep -E "FAILED|Failure|Expected|Which is|PASSED|error" "$OUT/kv_tests.txt" | head -30
grep -E "worst error|differ from the CPU|shared with the CPU|compressed logits" "$OUT/kv_tests.txt" | head -40
grep -E "^\[       OK \]" "$OUT/kv_tests.txt" | grep -E "EvictOne|GpuKvEngine|Graph" | head -20  # tova/h2o's one-eviction path
echo "== bench gpu-decode --context $CONTEXT --kv '$KVS'"
# Line-buffered: a spec's row is kept even if the time limit cuts the later specs.
timeout 150 stdbuf -oL .device/run ctxlab bench gpu-decode --model $M --context "$CONTEXT" --tokens 32 --rounds 1 \
  --copy-mib 512 --no-stages --kv "$KVS" > "$OUT/bench.txt" 2>&1
echo "exit $?"
grep -E "^device|^\| llama|error" "$OUT/bench.txt"
