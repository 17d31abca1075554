#!/usr/bin/env bash
# Twenty-third session, third call: int8 (classifier int8 too) against bf16 in the same process
# family, now that bf16 decodes faster (the 72-register fused-norm GEMV): the 1.7x target again.
# Here: BUILD=build BUNDLE_TESTS="gpu_quant_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
decode_7b int8_lm_head 120 int8:lm_head=true
decode_7b bf16 80 none
