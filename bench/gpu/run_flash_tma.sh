#!/usr/bin/env bash
# One device call for the TMA + warp-specialised flash prefill kernel (FlashImpl::kWgmmaTma, issue 7):
# its correctness against the float64 reference (gpu_attention_test's wgmma suite: every case the
# flash kernels take, with NaN past the cache's last entry too), the engine tests (prefill takes it on
# Hopper), then prefill attention at 32 heads, head_dim 128, causal, 4k..32k tokens: ctxlab's plain
# wgmma 64x4 and TMA 128x12 kernels, and PyTorch's SDPA backends (flash, cuDNN, efficient) and
# compiled flex_attention on the same card in the same call. Every program runs under a timeout.
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_flash_tma.sh [quick]   (run tool, carry [".device"], kind nvidia-h100-x1)
#         quick: no PyTorch, no engine test (a first check for hangs and wrong results)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/flash_tma_out}
mkdir -p "$OUT"
MODE=${1:-full}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
echo "== gpu_attention_test: wgmma flash kernels (64x4, 128x8, TMA 128x12)"
timeout 100 .device/run gpu_attention_test --gtest_filter='*GpuAttentionWgmma*' > "$OUT/attention_test.log" 2>&1
echo "exit $?"
grep -E "tma128x12" "$OUT/attention_test.log" | sort -t= -k2 -g | tail -2
grep -E "FAILED|Failure|PASSED|Skipped|error" "$OUT/attention_test.log" | head -30
echo "== ctxlab bench gpu-prefill-attention: plain wgmma 64x4 vs TMA 128x12"
B="timeout 60 .device/run ctxlab bench gpu-prefill-attention --heads 32"
$B --tokens 4096,8192,16384,32768 --head-dim 128 --kernel wgmma,tma --tma-pingpong 1,0 --tiles 64x4,128x12 2>&1 | tee "$OUT/bench.log"
$B --tokens 16384 --head-dim 128 --window 4096 --kernel wgmma,tma --tma-pingpong 1,0 --tiles 64x4,128x12 2>&1 | grep -E "^\| 1" | tee -a "$OUT/bench.log"
$B --tokens 16384 --kv-heads 8 --head-dim 128 --kernel wgmma,tma --tma-pingpong 1,0 --tiles 64x4,128x12 2>&1 | grep -E "^\| 1" | tee -a "$OUT/bench.log"
$B --tokens 16384 --head-dim 64 --kernel wgmma,tma --tma-pingpong 1,0 --tiles 128x8,128x12 2>&1 | grep -E "^\| 1" | tee -a "$OUT/bench.log"
if [[ "$MODE" != quick ]]; then
  echo "== PyTorch, same shapes"
  PYTHONUNBUFFERED=1 timeout 150 python3 bench/gpu/prefill_attention_torch.py --tokens 4096,8192,16384,32768 \
    --heads 32 --head-dim 128 --window 4096 2>&1 | tee "$OUT/torch.log"
  echo "== gpu_engine_test (prefill through the TMA kernel)"
  timeout 90 .device/run gpu_engine_test --gtest_brief=1 > "$OUT/engine_test.log" 2>&1
  echo "exit $?"
  grep -E "FAILED|Failure|PASSED|error" "$OUT/engine_test.log" | head -20
fi
