#!/usr/bin/env bash
# One device call (about 2 minutes; every step under a timeout): eager attention and flex score mods
# on the GPU (issue 7).
#   gpu_attention_test  eager over every one-sequence contiguous case and every case of the CPU
#                       conformance test; score mods through split-KV, mma.sync flash, wgmma and eager;
#                       all against the float64 reference (8 shards at once: the reference is the slow part)
#   gpu_engine_test     eager and flex score mods in the engine against the CPU engine; eager's memory
#   bench               prefill attention alone at 1k and 4k tokens (32 heads x 128): eager vs the flash
#                       kernels, time and peak memory; the whole engine on TinyLlama's shape (32/4 heads of
#                       64), TTFT and peak GB with sdpa vs eager at 1k and 4k
# Here:   BUILD=build-cuda BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_eager.sh   (run tool, carry the bundle as .device; full logs under $OUT)
# FULL=1: both test programs whole (every kernel, a regression check of the shared kernels), no benchmarks.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/run_eager}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
.device/run gpu_attention_test --gtest_list_tests > /dev/null  # unpacks the bundle once, before the shards
echo "== gpu_attention_test: eager, score mods (8 shards)"
F='*GpuAttentionEager*:*ScoreMod*:*GpuAttentionErrors*'
E='*GpuEager*:*GpuFlex*'
if [[ "${FULL:-0}" == 1 ]]; then F='*'; E='*'; fi
for i in 0 1 2 3 4 5 6 7; do
  GTEST_TOTAL_SHARDS=8 GTEST_SHARD_INDEX=$i timeout 60 .device/run gpu_attention_test --gtest_brief=1 \
    --gtest_filter="$F" > "$OUT/attention_$i.log" 2>&1 &
done
wait
cat "$OUT"/attention_*.log > "$OUT/attention.log" && rm -f "$OUT"/attention_*.log  # at most 8 files come back
grep -E "^\[  PASSED|^\[  FAILED|^\[  SKIPPED" "$OUT/attention.log" | awk '{n[$2] += $4} END {for (k in n) print k, n[k], "tests"}'
grep -E "Failure|Expected|Which is|error" "$OUT/attention.log" | head -20
echo "worst max|gpu - ref| / max|ref| per kernel:"
grep -h "max |gpu - ref|" "$OUT/attention.log" |
  awk '{v = $2; sub(":", "", v); x = $NF + 0; if (!(v in w) || x > w[v]) w[v] = x; c[v]++}
       END {for (v in w) printf "  %-12s %.3g over %d cases\n", v, w[v], c[v]}'
echo "== gpu_engine_test: eager and flex score mods vs the CPU engine"
for i in 0 1 2 3; do
  GTEST_TOTAL_SHARDS=4 GTEST_SHARD_INDEX=$i timeout 90 .device/run gpu_engine_test --gtest_filter="$E" \
    > "$OUT/engine_$i.log" 2>&1 &
done
wait
cat "$OUT"/engine_*.log > "$OUT/engine.log" && rm -f "$OUT"/engine_*.log
grep -E "eager|fused|\|\||PASSED|FAILED|Failure|Expected|Which is" "$OUT/engine.log" | head -70
[[ "${FULL:-0}" == 1 ]] && exit 0
echo "== ctxlab bench gpu-prefill-attention: eager vs flash kernels"
timeout 25 .device/run ctxlab bench gpu-prefill-attention --tokens 1024,4096 --heads 32 --head-dim 128 \
  --kernel wgmma,flash,eager --rounds 5 --launches 2
echo "== ctxlab bench gpu-decode on TinyLlama's shape: sdpa vs eager"
for a in sdpa eager; do
  timeout 30 .device/run ctxlab bench gpu-decode --model random:bench/configs/llama_1b.json --context 1024,4096 \
    --tokens 8 --rounds 1 --engine-per-context --attention $a > "$OUT/decode_$a.log" 2>&1
  grep -E "^device|^\| model|^\| .* \| (1024|4096) \| " "$OUT/decode_$a.log"
done
