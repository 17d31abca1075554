#!/usr/bin/env bash
# Where a batch-1 decode step's time goes, kernel by kernel, as the CUDA graph replays it
# (`ctxlab bench gpu-timeline`: CUPTI's kernel records, core/cuda/kernel_trace.h). First the engine's
# timeline test (GpuKernelTimeline), then the Llama-2-7B shape at 256 in bf16, int8 (classifier int8)
# and q4_0 (TIMELINE_QUANTS: others), one process each.
# Here: BUILD=build BUNDLE_TESTS="gpu_engine_test" bash scripts/device_bundle.sh
. "$(dirname "$0")/common.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 60 .device/run gpu_engine_test --gtest_filter='GpuKernelTimeline*' > "$OUT/timeline_test.txt" 2>&1
echo "== gpu_engine_test GpuKernelTimeline*: exit $?"
grep -vE "^\[ (RUN|      OK) " "$OUT/timeline_test.txt" | tail -40
for q in ${TIMELINE_QUANTS:-none int8:lm_head=true q4_0}; do
  log="$OUT/timeline_${q%%:*}.txt" start=$SECONDS
  timeout 120 .device/run ctxlab bench gpu-timeline --model "$M7" --context 256 --steps 16 --quant "$q" > "$log" 2>&1
  echo "== 7B $q: exit $? after $((SECONDS - start)) s"
  grep -E "^device|^ms/token|^\||rror" "$log"
done
