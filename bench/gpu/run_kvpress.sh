#!/usr/bin/env bash
# One device call: KV compression on the GPU engine. The GPU engine tests (the compression kernels
# against the CPU plugins, the engine's kept positions and logits against the CPU engine, paged
# compaction, graph decode; and the existing tests, paged bit for bit against contiguous), then
# decode at 32k context on the Llama-2-7B shape uncompressed and with keep_ratio 0.25 (l2norm on
# every layer; KVS='...;...' for others, e.g. streaming:keep_ratio=0.25): the stage table's
# "attention" row is the issue's target (compressed <= 0.35x uncompressed), ms/token the whole step.
# Here:   BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_kvpress.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
M=random:.device/bench_configs/llama2_7b.json
CONTEXT=${CONTEXT:-32768}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_engine_test"
LOG=$(mktemp)
timeout 120 .device/run gpu_engine_test > "$LOG" 2>&1
echo "exit $?"
grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped|error" "$LOG" | head -40
echo "== measured (kv tests)"
grep -E "compressed logits|kept positions" "$LOG" | head -60
IFS=';' read -ra KV_LIST <<< "${KVS:-none;l2norm:keep_ratio=0.25,skip_layers=[]}"
for KV in "${KV_LIST[@]}"; do
  echo "== bench gpu-decode --context $CONTEXT --kv $KV"
  timeout 150 .device/run ctxlab bench gpu-decode --model $M --context "$CONTEXT" --tokens 32 --rounds 1 \
    --copy-mib 512 --kv "$KV" | grep -E "^device|^\| llama|^\| attention|^one decode"
done
