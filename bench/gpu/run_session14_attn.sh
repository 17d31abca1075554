#!/usr/bin/env bash
# Fourteenth session, attention at short context: a q4_0 decode step of the 7B at 256 spends 0.42 of
# its 3.04 event-timed ms in attention (13 us per layer for 4 MB of K/V). The decode attention kernel
# alone (32 heads of 128, bf16 K/V) at 256 and 1024 cached positions over split counts, without and
# with the key prefetch; then the 7B q4_0 decode at 256 with --attention-prefetch 0 and 1.
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for pf in 0 1; do
  echo "== decode attention, prefetch $pf"
  timeout 60 .device/run ctxlab bench gpu-attention --context 256,1024 --splits 1,2,4,5,8,16,32,64 --prefetch $pf \
    --copy-mib 512 > "$OUT/attn_pf$pf.txt" 2>&1
  echo "exit $?"
  grep -E "^\|" "$OUT/attn_pf$pf.txt" | head -24
done
for pf in 0 1; do
  echo "== 7B q4_0 at 256, --attention-prefetch $pf"
  timeout 90 .device/run ctxlab bench gpu-decode --model "$M7" --context 256 --tokens 64 --rounds 2 --copy-mib 512 \
    --no-stages --quant q4_0 --attention-prefetch $pf > "$OUT/d7b_pf$pf.txt" 2>&1
  echo "exit $?"
  grep -E "^\| llama" "$OUT/d7b_pf$pf.txt" | sed 's/| llama L=32 d=4096 heads=32.32 hd=128 ff=11008 vocab=32000 params=6738415616//'
done
