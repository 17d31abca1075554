#!/usr/bin/env bash
# Sixteenth session (2026-12-07): how much the last, partly filled wave of tiles costs main's quantized
# decode GEMV. The 8-layer Llama-2-7B shape with intermediate size 10560, 11008 and 12672: the plain
# gate_proj GEMV then has 660, 688 and 792 tiles of 16 rows, i.e. 5, 5.2 and 6 per block on an H100's
# 132 blocks (one per SM). The GEMV and layer tables of each, q4_0 and int8 (one process each).
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for q in ${QUANTS:-q4_0 int8}; do
  for ff in 10560 11008 12672; do ff_decode "$q" $ff; done
done
