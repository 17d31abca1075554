#!/usr/bin/env bash
# One device call (about 15 s of commands) for KIVI int4 decode attention through a cp.async ring
# (issue 8, branch kivifast): the KIVI attention tests (every variant against the float64 reference)
# and the KIVI engine tests, then issue 8's two commands (MHA 32q/32kv and GQA 32q/8kv at 32k,
# head_dim 128, group 32, residual 128) with the defaults, and the same shapes with the 4-bit paths
# the defaults were before this branch (MHA: --tensor-cores 0, the CUDA-core pass; GQA:
# --kivi-stages 0, tile codes loaded into registers) in the same call. EXPLORE=1 adds split-count
# sweeps of each ring depth (+10 s). Target (issue 8): the "default" kivi int4 rows' last column <= 0.4.
# Here:   BUILD=build-cuda JOBS=1 BUNDLE_TESTS="gpu_attention_test gpu_engine_test" bash scripts/device_bundle.sh
# Device: bash bench/gpu/run_kivifast.sh   (run tool, carry [".device"], kind nvidia-h100-x1)
# Full outputs under $OUT; on stdout: test summaries and rows "label | layout | splits | K+V MB | us | ratio vs copy | vs bf16".
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
kivi_attention_checks "KIVI quantize and attention vs float64"
if [[ -x .device/run ]] && .device/run gpu_engine_test --gtest_list_tests > /dev/null 2>&1; then kivi_engine_checks; fi
echo "== decode attention at 32k (label | layout | splits | K+V MB | us | ratio vs copy | time vs bf16 of the same split)"
kivi_bench "MHA default" --kivi-bits 4,8
kivi_bench "GQA default" --kv-heads 8 --kivi-bits 4,8
kivi_bench "MHA before (CUDA cores)" --kivi-bits 4 --tensor-cores 0
kivi_bench "GQA before (registers)" --kv-heads 8 --kivi-bits 4 --kivi-stages 0
if [[ "${EXPLORE:-0}" == 1 ]]; then
  kivi_bench "MHA tc ring2" --kivi-bits 4 --tensor-cores 1 --kivi-stages 2 --splits 8,12,16,24,32,48,64
  kivi_bench "MHA tc ring3" --kivi-bits 4 --tensor-cores 1 --kivi-stages 3 --splits 8,12,16,24,32,64
  kivi_bench "GQA ring2" --kv-heads 8 --kivi-bits 4 --kivi-stages 2 --splits 16,24,32,48,64,96
  kivi_bench "GQA ring3" --kv-heads 8 --kivi-bits 4 --kivi-stages 3 --splits 16,24,48,64,96
fi
