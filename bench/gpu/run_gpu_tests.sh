#!/usr/bin/env bash
# Every GPU test program of the bundle, whole (run_test_programs: 110 s each at most), with its summary.
# Here: BUILD=build BUNDLE_TESTS="$(ls build/tests | grep -E '^gpu_.*_test$' | tr '\n' ' ')" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
run_test_programs $(cd .device/bin 2>/dev/null && ls gpu_*_test 2>/dev/null || tar -tJf .device/bin.tar.xz | sed 's|.*/||' | grep -E '^gpu_.*_test$')
