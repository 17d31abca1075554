// A block's share of a kernels.h L2Prefetch, pulled into L2 (internal to core/cuda/kernels).
#pragma once

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

// The grid's blocks split each range evenly; this block's threads issue its share in pieces of up to
// 32 KiB, one cp.async.bulk.prefetch.L2 each (asynchronous: nothing waits for it). No-op before sm_90.
__device__ inline void prefetch_share_into_l2(const L2Prefetch& p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int64_t kPiece = 32768;
  const int64_t blocks = int64_t(gridDim.x) * gridDim.y * gridDim.z;
  const int64_t block = blockIdx.x + int64_t(gridDim.x) * (blockIdx.y + int64_t(gridDim.y) * blockIdx.z);
  for (int r = 0; r < p.count; ++r) {
    const int64_t units = p.bytes[r] / 16, share = (units + blocks - 1) / blocks * 16;
    const int64_t begin = block * share, end = begin + share < units * 16 ? begin + share : units * 16;
    for (int64_t off = begin + int64_t(threadIdx.x) * kPiece; off < end; off += int64_t(blockDim.x) * kPiece) {
      const uint32_t size = uint32_t(end - off < kPiece ? end - off : kPiece);
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(static_cast<const char*>(p.ptr[r]) + off),
                   "r"(size)
                   : "memory");
    }
  }
#else
  (void)p;
#endif
}

}  // namespace ctx::cuda
