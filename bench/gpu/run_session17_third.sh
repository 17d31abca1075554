#!/usr/bin/env bash
# Seventeenth session, third call: decode attention's key prefetch (`--attention-prefetch 0,1`, one
# engine each) with this session's attention change, 7B at 256 and 1k, bf16, q4_0 and int8 (classifier
# int8): whether the prefetch should be on by default for one query head per block.
# Here: BUILD=build BUNDLE_TESTS=0 bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
for q in none q4_0 int8:lm_head=true; do
  CONTEXTS=256,1024 decode_7b "${q%%:*}_prefetch" 90 "$q" --attention-prefetch 0,1
done
