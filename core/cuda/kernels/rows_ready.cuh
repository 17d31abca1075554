// Rows a decode GEMV publishes as it stores them, and the waits of a kernel running beside it
// (kernels.h RowsReady; internal to core/cuda/kernels).
//
// Producer: store the row, __threadfence(), then atomicAdd on its counter (publish_row): any thread
// that sees the count also sees the row. Consumer: one thread spins with acquire loads until the
// count is reached (wait_count), fences, and the block meets at a barrier; the rows are then read
// through L2 (__ldcg), since L1 is not coherent with other SMs' stores.
#pragma once

#include <cstdint>

#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

__device__ inline void publish_row(const RowsReady& ready, int64_t row) {
  __threadfence();
  atomicAdd(ready.counters + row / ready.rows, 1);
}

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Spins until *counter >= target. A count that has not moved for 2 s traps (the launch fails with
// an error instead of hanging the stream).
__device__ inline void wait_count(const int* counter, int target) {
  int seen = load_acquire(counter);
  if (seen >= target) return;
  uint64_t since = global_ns();
  unsigned sleep = 32;
  while (true) {
    __nanosleep(sleep);
    if (sleep < 256) sleep *= 2;
    const int now = load_acquire(counter);
    if (now >= target) return;
    if (now != seen) {
      seen = now, since = global_ns();
    } else if (global_ns() - since > 2000000000ull) {
      __trap();
    }
  }
}

}  // namespace ctx::cuda
