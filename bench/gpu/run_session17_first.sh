#!/usr/bin/env bash
# Seventeenth session, first call: the decode step's kernel timeline (run_timeline.sh: the
# GpuKernelTimeline test, then bf16, int8 and q4_0 at 256), and the 7B q4_0 decode at 256 with decode
# attention's minimum chunk 32 (the default), 64, 128 and 256 keys on one engine.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
bash bench/gpu/run_timeline.sh
CONTEXTS=256 decode_7b q4_0_minchunk 150 q4_0 --decode-min-chunk 32,64,128,256
