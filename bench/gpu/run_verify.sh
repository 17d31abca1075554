#!/usr/bin/env bash
# One device call for the code merged after the last device run of 2026-12-06 (KIVI KV, KV compression,
# the split-KV kernel's refactor into attention_pass.cuh, the flash kernels' start_block): every GPU
# test, then the timings those changes must not regress or must show (about 4 minutes). Full outputs
# go to $OUT (fetched with the call), the summary to stdout.
# Here:   BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test gpu_quant_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_verify.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
M=random:.device/bench_configs/llama2_7b.json
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for t in gpu_attention_test gpu_engine_test gpu_quant_test; do
  echo "== $t"
  timeout 180 .device/run "$t" > "$OUT/$t.txt" 2>&1
  grep -E "FAILED|Failure|Expected|Which is|PASSED" "$OUT/$t.txt" | head -20
done
grep -E "kv_quant|compressed logits|kept positions|flex:" "$OUT/gpu_engine_test.txt" | head -30
echo "== decode attention 32k: bf16 vs KIVI int4/int8, MHA and GQA 32q/8kv"
.device/run ctxlab bench gpu-attention --context 4096,32768 --kivi-bits 4,8 --copy-mib 512 | grep "^| [0-9]"
.device/run ctxlab bench gpu-attention --kv-heads 8 --context 32768 --kivi-bits 4,8 --copy-mib 512 | grep "^| [0-9]"
echo "== batch-1 decode at 1k (regression check: 5.16-5.27 ms/token, 0.87-0.88 before the refactor)"
timeout 120 .device/run ctxlab bench gpu-decode --model $M --context 1024 --tokens 128 --rounds 3 | grep -E "^device|^\| llama|^\| attention"
for KV in none "l2norm:keep_ratio=0.25,skip_layers=[]"; do
  echo "== decode at 32k, kv $KV (issue 8: compressed attention <= 0.35x of uncompressed)"
  timeout 150 .device/run ctxlab bench gpu-decode --model $M --context 32768 --tokens 32 --rounds 1 --copy-mib 512 \
    --kv "$KV" | grep -E "^\| llama|^\| attention"
done
