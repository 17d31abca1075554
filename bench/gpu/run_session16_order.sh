#!/usr/bin/env bash
# Sixteenth session (2026-12-07): the quantized decode GEMV's tile order alone, strided (main: block b
# takes tiles b, b + G, ...) against contiguous ranges (block b takes [T b / G, T (b + 1) / G)), one
# process each, the 7B's GEMV and layer tables and decode at 256 with q4_0 and int8. Needs the
# CTXLAB_QGEMV_TILE_ORDER switch of commit 3f9c2cf (reverted on main): `git checkout 3f9c2cf`, then
#   BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for q in q4_0 int8:lm_head=true; do
  for order in strided contiguous; do
    CONTEXTS=256 CTXLAB_QGEMV_TILE_ORDER=$order decode_7b "${q%%:*} $order" 90 "$q"
  done
done
