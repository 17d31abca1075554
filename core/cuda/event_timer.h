// Timing of device work with CUDA events on the legacy default stream (internal to core/cuda).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cuda/cuda_check.h"

namespace ctx::cuda {

// How many copies of a `bytes` buffer a benchmark cycles through so that each launch reads from
// HBM, not from the 50 MB L2: enough for more than 512 MB, at least `at_least`.
inline int64_t copies_beyond_l2(int64_t bytes, int64_t at_least) {
  return std::max<int64_t>(at_least, (int64_t(512) << 20) / bytes + 1);
}

// Median milliseconds of `reps` event-timed runs of `fn` (after two warm-up runs); fn enqueues work
// on the default stream (or on streams that synchronize with it).
template <class Fn>
double median_ms(int reps, Fn fn) {
  cudaEvent_t start, stop;
  CTX_CUDA_CHECK(cudaEventCreate(&start));
  CTX_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int r = 0; r < reps + 2; ++r) {
    CTX_CUDA_CHECK(cudaEventRecord(start));
    fn();
    CTX_CUDA_CHECK(cudaEventRecord(stop));
    CTX_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0;
    CTX_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    if (r >= 2) ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return double(ms[ms.size() / 2]);
}

}  // namespace ctx::cuda
