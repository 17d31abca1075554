// A block's strided pass over an array with its loads in flight together (internal to
// core/cuda/kernels).
#pragma once

#include <cstdint>

namespace ctx::cuda {

// f(at(i), p[at(i)]) for every i < n of this thread's share (i = first + k * step), four loads
// issued before the first f of each group runs; groups in order of i.
template <class T, class At, class F>
__device__ __forceinline__ void for_each_strided_x4(const T* p, int64_t n, int64_t first, int64_t step, At at, F f) {
  for (int64_t i0 = first; i0 < n; i0 += 4 * step) {
    T v[4];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      if (i0 + k * step < n) v[k] = p[at(i0 + k * step)];
#pragma unroll
    for (int k = 0; k < 4; ++k)
      if (i0 + k * step < n) f(at(i0 + k * step), v[k]);
  }
}
// f(i, p[i]) for every i < n of this thread's share of the block (i = threadIdx.x + k * blockDim.x).
template <class T, class F>
__device__ __forceinline__ void for_each_strided_x4(const T* p, int64_t n, F f) {
  for_each_strided_x4(p, n, threadIdx.x, blockDim.x, [](int64_t i) { return i; }, f);
}

}  // namespace ctx::cuda
