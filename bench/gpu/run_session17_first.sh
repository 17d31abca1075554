#!/usr/bin/env bash
# Seventeenth session, first call: the decode step's kernel timeline (run_timeline.sh: the
# GpuKernelTimeline test, then bf16 and q4_0 at 256), and the 7B decode at 256 in q4_0 (without and
# with the attention key prefetch), int8 (classifier int8) and bf16 with decode attention's minimum
# chunk 32 (the default), 64, 128 and 256 keys, one engine per row of this list.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
TIMELINE_QUANTS="none q4_0" bash bench/gpu/run_timeline.sh
CONTEXTS=256 decode_7b q4_0_minchunk 150 q4_0 --decode-min-chunk 32,64,128,256
CONTEXTS=256 decode_7b int8_minchunk 120 int8:lm_head=true --decode-min-chunk 32,64,128,256
CONTEXTS=256 decode_7b bf16_minchunk 100 none --decode-min-chunk 32,64,128,256
CONTEXTS=256 decode_7b q4_0_prefetch_minchunk 150 q4_0 --attention-prefetch 1 --decode-min-chunk 32,64,128,256
