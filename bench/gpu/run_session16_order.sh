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
    log="$OUT/${q%%:*}_$order.txt" start=$SECONDS
    CTXLAB_QGEMV_TILE_ORDER=$order timeout 90 .device/run ctxlab bench gpu-decode --model "$M7" --context 256 --tokens 64 \
      --rounds 2 --copy-mib 512 --no-stages --quant "$q" > "$log" 2>&1
    echo "== 7B $q, $order: exit $? after $((SECONDS - start)) s"
    grep -E "^\| (llama|q_proj|o_proj|gate_proj|down_proj|lm_head|four kernels)|rror" "$log" | sed 's/| llama [^|]* //'
  done
done
