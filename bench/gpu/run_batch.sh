#!/usr/bin/env bash
# One device call: the GPU engine tests (paged KV bit-for-bit against contiguous, batched greedy
# against each prompt alone, the KV pool), batch-1 decode against the roofline (regression check),
# then the batched-decode matrix (context x batch, paged KV) and mixed-length batches, paged vs
# contiguous, on the Llama-2-7B shape.
# Here:   BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_batch.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
M=random:.device/bench_configs/llama2_7b.json
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_engine_test"
.device/run gpu_engine_test --gtest_brief=1 2>&1 | grep -E "FAILED|Failure|Expected|Which is|PASSED|error|agree for" | head -40
echo "== batch-1 decode (Llama-2-7B shape)"
.device/run ctxlab bench gpu-decode --model $M --context 1024 --tokens 128 --rounds 3 | grep -E "^\| llama|^device"
echo "== batched decode matrix, paged KV (block 16, 55 GB pool)"
.device/run ctxlab bench gpu-batch --model $M --context ${CONTEXTS:-128,1024,4096,16384} --batch ${BATCHES:-1,8,32} --tokens 32 --rounds 2 --kv-pool-gb 55
echo "== mixed-length batches: paged 16 vs contiguous"
.device/run ctxlab bench gpu-batch --model $M --context 4096 --batch 8,16 --tokens 32 --rounds 2 --mixed --kv-block-size 16 --kv-pool-gb 30
.device/run ctxlab bench gpu-batch --model $M --context 4096 --batch 8,16 --tokens 32 --rounds 2 --mixed --kv-block-size 0
