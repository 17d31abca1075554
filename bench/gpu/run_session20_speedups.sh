#!/usr/bin/env bash
# Twentieth session: issue 8's batch-1 decode speed-ups on main, bf16 and int8 (classifier int8)
# alternating twice; 7B at 256 and 1024, one process each.
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
decode_7b bf16 60 none
decode_7b int8_lm_head 80 int8:lm_head=true
decode_7b bf16_again 60 none
decode_7b int8_lm_head_again 80 int8:lm_head=true
