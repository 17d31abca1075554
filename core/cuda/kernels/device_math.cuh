// Device helpers shared by the kernels (internal to core/cuda/kernels).
#pragma once

#include <cuda_bf16.h>

namespace ctx::cuda {

__device__ inline float round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

// HF's SiLU-and-multiply in bf16: the projections, the activation and the product each rounded.
__device__ inline __nv_bfloat16 swiglu(float gate, float up) {
  const float g = round_bf16(gate);
  const float act = round_bf16(g / (1.f + expf(-g)));
  return __float2bfloat16(act * round_bf16(up));
}

// Sum over the warp; every lane gets the result.
__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x <= 1024, every thread calls it); every thread gets the result.
__device__ inline float block_sum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  v = warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.f;
    for (int w = 0; w < int((blockDim.x + 31) / 32); ++w) s += partial[w];
    total = s;
  }
  __syncthreads();
  return total;
}

// Max over the block (blockDim.x <= 1024, every thread calls it); every thread gets the result.
__device__ inline float block_max(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = partial[0];
    for (int w = 1; w < int((blockDim.x + 31) / 32); ++w) m = fmaxf(m, partial[w]);
    total = m;
  }
  __syncthreads();
  return total;
}

}  // namespace ctx::cuda
