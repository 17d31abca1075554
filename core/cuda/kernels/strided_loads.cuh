// A block's strided pass over an array with its loads in flight together (internal to
// core/cuda/kernels).
#pragma once

#include <cstdint>

namespace ctx::cuda {

// f(i, p[i]) for every i < n of this thread's share (i = threadIdx.x + k * blockDim.x), four loads
// issued before the first f of each group runs; groups in order of i.
template <class T, class F>
__device__ __forceinline__ void for_each_strided_x4(const T* p, int64_t n, F f) {
  const int64_t step = blockDim.x;
  for (int64_t i0 = threadIdx.x; i0 < n; i0 += 4 * step) {
    T v[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      if (i0 + k * step < n) v[k] = p[i0 + k * step];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      if (i0 + k * step < n) f(i0 + k * step, v[k]);
  }
}

}  // namespace ctx::cuda
