#!/usr/bin/env bash
# One device call (~2 min) for decode attention on tensor cores (issues 7 and 8): the attention
# conformance test (bf16 and KIVI, every variant against the float64 reference), the engine tests
# that decode through the wide kernels (head dims 64/128/256, KIVI), then decode attention at 4k and
# 32k, MHA 32 heads and GQA 32q/8kv, bf16 and KIVI int4/int8, with the binary of main before the
# change (.device/ctxlab_base.xz, when bundled) and after it, in the same call; with RUN_DECODE=1
# also batch-1 engine decode at 1k (+1 min). Full outputs under $OUT, the summary on stdout.
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
#         (optionally: strip, xz a ctxlab built from main into .device/ctxlab_base.xz)
# Device: bash bench/gpu/run_decodeattn.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
# bench/RESULTS.md's numbers (2026-12-06) came from an earlier version of this script, when the
# tensor-core pass prefetched only with --prefetch 1 and GQA took 64 splits by default (its rows name
# the flags); with this branch's defaults the "after" rows are that --prefetch 1 --splits 32 point.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
M=random:.device/bench_configs/llama2_7b.json
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "== gpu_attention_test (bf16 and KIVI kernels vs float64)"
timeout 170 .device/run gpu_attention_test --gtest_brief=1 --gtest_filter='-*Wgmma*' > "$OUT/gpu_attention_test.txt" 2>&1
echo "rc $?"
grep -E "FAILED|Failure|PASSED|Skipped|: worst" "$OUT/gpu_attention_test.txt" | head -30
echo "worst tensor-core deviations (max |gpu - ref| / max|ref|):"
grep -E "(vectorised|tensor-cores): max" "$OUT/gpu_attention_test.txt" | sort -g -k 10 | tail -4
echo "== gpu_engine_test: vectorised head dims, KIVI engine"
timeout 100 .device/run gpu_engine_test --gtest_brief=1 --gtest_filter='*HeadDim*:*Kivi*' > "$OUT/gpu_engine_test.txt" 2>&1
echo "rc $?"
grep -E "FAILED|Failure|Expected|Which is|PASSED|head_dim .* vs cpu" "$OUT/gpu_engine_test.txt" | head -20
bench() {  # $1: label, $2...: the ctxlab command
  local label=$1; shift
  echo "-- $label"
  "$@" bench gpu-attention --context 4096,32768 --kivi-bits 4,8 --copy-mib 512 | grep "^| [0-9]"
  "$@" bench gpu-attention --kv-heads 8 --context 32768 --kivi-bits 4,8 --copy-mib 512 | grep "^| [0-9]"
}
echo "== decode attention (| context | batch | layout | splits | K+V MB | reserved MB | waste | us | GB/s | ratio vs copy | time vs bf16 |)"
bench "after: MHA 32/32 then GQA 32/8" .device/run ctxlab
if [[ -f .device/ctxlab_base.xz ]]; then
  xz -dc .device/ctxlab_base.xz > /tmp/ctxlab_base && chmod +x /tmp/ctxlab_base
  bench "before (main): MHA 32/32 then GQA 32/8" .device/run exec /tmp/ctxlab_base
fi
echo "-- after, GQA 32/8 at 32k by split count (bf16, KIVI int4/int8 on tensor cores)"
.device/run ctxlab bench gpu-attention --kv-heads 8 --context 32768 --splits 16,32,64,128 --kivi-bits 4,8 --copy-mib 512 | grep "^| [0-9]"
echo "-- after, GQA 32/8 at 32k on the CUDA-core passes (--tensor-cores 0)"
.device/run ctxlab bench gpu-attention --kv-heads 8 --context 32768 --splits 32,64 --tensor-cores 0 --kivi-bits 4 --copy-mib 512 | grep "^| [0-9]"
echo "-- after, MHA 32/32 at 32k on tensor cores (--tensor-cores 1: bf16 and KIVI)"
.device/run ctxlab bench gpu-attention --context 32768 --tensor-cores 1 --kivi-bits 4,8 --copy-mib 512 | grep "^| [0-9]"
if [[ "${RUN_DECODE:-0}" == 1 ]]; then
  echo "== batch-1 decode at 1k, llama2-7b shape (before the change: 5.273 ms/token, 0.867 of roofline)"
  timeout 100 .device/run ctxlab bench gpu-decode --model $M --context 1024 --tokens 128 --rounds 3 | grep -E "^device|^\| llama|^\| attention"
fi
