#!/usr/bin/env bash
# One device call (about 4-5 minutes; each step under a timeout): the attention conformance test
# (every contiguous head_dim 64/128 case also through the tensor-core flash prefill kernels, against
# a float64 reference), the engine tests (prefill of >= 64 tokens takes the flash kernel), then
# prefill attention timings at 32 heads, head_dim 128, causal, 4k..32k tokens: ctxlab's flash
# kernels, mma.sync and Hopper wgmma, in their block shapes (and a 4096 window, GQA 32q/8kv,
# head_dim 64; the split-KV kernel at 4k for scale), and PyTorch's SDPA backends (flash, cuDNN,
# efficient) and compiled flex_attention on the same card.
# Here:   BUILD=build BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_flash.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
set -uo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
echo "== gpu_attention_test: split-KV and mma.sync flash kernels"
timeout 200 .device/run gpu_attention_test --gtest_brief=1 --gtest_filter='-*GpuAttentionWgmma*' 2>&1 |
  grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped|error|worst" | head -40
echo "== gpu_attention_test: wgmma flash kernel (apart: a fault there must not hide the rest)"
timeout 120 .device/run gpu_attention_test --gtest_brief=1 --gtest_filter='*GpuAttentionWgmma*' 2>&1 |
  grep -E "FAILED|Failure|Expected|Which is|PASSED|Skipped|error|worst" | head -40
echo "== errors of a few prefill cases, every kernel"
timeout 60 .device/run gpu_attention_test --gtest_filter='*_d128_len1500*:*_d64_len65_*:*_d128_len777*' 2>&1 |
  grep -E "flash|wgmma|vectorised" | head -24
if [[ -x .device/bin/gpu_engine_test ]]; then
  echo "== gpu_engine_test"
  timeout 120 .device/run gpu_engine_test --gtest_brief=1 2>&1 | grep -E "head_dim|FAILED|Failure|Expected|Which is|PASSED|error" | head -20
fi
echo "== ctxlab bench gpu-prefill-attention: mma.sync flash kernel, block shapes rows x warps"
B="timeout 90 .device/run ctxlab bench gpu-prefill-attention --heads 32"
$B --tokens 4096,8192,16384,32768 --head-dim 128 --kernel flash --tiles 64x4,128x4,128x8
$B --tokens 16384 --head-dim 128 --window 4096 --kernel flash --tiles 64x4,128x8
$B --tokens 16384 --kv-heads 8 --head-dim 128 --kernel flash --tiles 64x4,128x8
$B --tokens 16384 --head-dim 64 --kernel flash --tiles 64x4,128x4,128x8
echo "== the same, Hopper wgmma flash kernel (apart: a fault there must not end the rows above)"
$B --tokens 4096,8192,16384,32768 --head-dim 128 --kernel wgmma --tiles 64x4,128x8
$B --tokens 16384 --head-dim 128 --window 4096 --kernel wgmma --tiles 64x4,128x8
$B --tokens 16384 --kv-heads 8 --head-dim 128 --kernel wgmma --tiles 64x4,128x8
$B --tokens 16384 --head-dim 64 --kernel wgmma --tiles 64x4,128x8
echo "== the split-KV kernel on prompts, for scale"
$B --tokens 4096 --kernel split_kv --rounds 3 --launches 1
echo "== PyTorch, same shapes"
PYTHONUNBUFFERED=1 timeout 180 python3 bench/gpu/prefill_attention_torch.py --tokens 4096,8192,16384,32768 \
  --heads 32 --head-dim 128 --window 4096
echo "== PyTorch SDPA, GQA 32q/8kv and head_dim 64 at 16k (the ctxlab rows above)"
PYTHONUNBUFFERED=1 timeout 45 python3 bench/gpu/prefill_attention_torch.py --tokens 16384 --kv-heads 8 --skip-flex
PYTHONUNBUFFERED=1 timeout 45 python3 bench/gpu/prefill_attention_torch.py --tokens 16384 --head-dim 64 --skip-flex
