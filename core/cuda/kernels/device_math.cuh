// Device helpers shared by the kernels (internal to core/cuda/kernels).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace ctx::cuda {

__device__ inline float round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

// HF's SiLU-and-multiply in bf16: the projections, the activation and the product each rounded.
__device__ inline __nv_bfloat16 swiglu(float gate, float up) {
  const float g = round_bf16(gate);
  const float act = round_bf16(g / (1.f + expf(-g)));
  return __float2bfloat16(act * round_bf16(up));
}

// RoPE of element e of a head of hd elements (launch_qkv_rope's rule, also fused into decode attention):
// x[e] * cos(angle) + sign * x[partner] * sin(angle), angle = pos * inv_freq[i] in float32 (as HF
// computes positions * inv_freq). The pairs are (i, i + hd/2) (HF's rotate_half), or (2i, 2i + 1)
// when interleaved. One function for both kernels, so that they round alike.
struct RopePair {
  int64_t i, partner;
  float sign;
};
__device__ inline RopePair rope_pair(int64_t e, int64_t hd, bool interleaved) {
  if (interleaved) return RopePair{e / 2, e ^ 1, (e % 2 == 0) ? -1.f : 1.f};
  const int64_t half = hd / 2;
  return e < half ? RopePair{e, e + half, -1.f} : RopePair{e - half, e - half, 1.f};
}
// The cosine and sine of a pair's angle at pos, apart from the rotation, so that a kernel can take them
// before its inputs are ready (the same values rope_rotate uses).
struct RopeAngle {
  float cos = 1.f, sin = 0.f;
};
__device__ inline RopeAngle rope_angle(const RopePair& r, int64_t pos, const float* inv_freq) {
  const float angle = float(pos) * inv_freq[r.i];
  return RopeAngle{cosf(angle), sinf(angle)};
}
__device__ inline float rope_apply(float x, float partner, const RopePair& r, const RopeAngle& a) {
  return x * a.cos + r.sign * partner * a.sin;
}
__device__ inline float rope_rotate(float x, float partner, const RopePair& r, int64_t pos, const float* inv_freq) {
  return rope_apply(x, partner, r, rope_angle(r, pos, inv_freq));
}

// Brings the 128-byte line holding p into this SM's L1 (no register waits for it): for memory read
// later that no launch still running writes, e.g. before pdl_wait() (pdl.cuh).
__device__ __forceinline__ void prefetch_l1(const void* p) { asm volatile("prefetch.global.L1 [%0];\n" ::"l"(p)); }

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
