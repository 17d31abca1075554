// GEMV for decode and the GEMM epilogue (kernels.h).
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

namespace {

constexpr int kRowsPerBlock = 8;  // one warp per row

__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float dot8(uint4 w, uint4 x) {
  const __nv_bfloat162* a = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* b = reinterpret_cast<const __nv_bfloat162*>(&x);
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 fa = __bfloat1622float2(a[i]);
    const float2 fb = __bfloat1622float2(b[i]);
    s = fmaf(fa.x, fb.x, s);
    s = fmaf(fa.y, fb.y, s);
  }
  return s;
}

// This lane's part of dot(w_row, x_row); the caller sums over the warp. kVec: rows are whole
// 16-byte chunks (cols % 8 == 0). Weights are read once, so they bypass L1 (__ldcs: evict-first);
// x is re-read by every row and stays cached.
template <bool kVec>
__device__ inline float lane_dot(const bf16* __restrict__ w_row, const bf16* __restrict__ x_row, int64_t cols, int lane) {
  float acc = 0.f;
  if constexpr (kVec) {
    const uint4* w4 = reinterpret_cast<const uint4*>(w_row);
    const uint4* x4 = reinterpret_cast<const uint4*>(x_row);
    const int64_t chunks = cols / 8;
    int64_t c = lane;
    // Four independent 16-byte loads in flight per lane.
    for (; c + 96 < chunks; c += 128) {
      const uint4 w0 = __ldcs(w4 + c), w1 = __ldcs(w4 + c + 32), w2 = __ldcs(w4 + c + 64), w3 = __ldcs(w4 + c + 96);
      acc += dot8(w0, x4[c]) + dot8(w1, x4[c + 32]) + dot8(w2, x4[c + 64]) + dot8(w3, x4[c + 96]);
    }
    for (; c < chunks; c += 32) acc += dot8(__ldcs(w4 + c), x4[c]);
  } else {
    for (int64_t c = lane; c < cols; c += 32) acc = fmaf(__bfloat162float(w_row[c]), __bfloat162float(x_row[c]), acc);
  }
  return acc;
}

template <bool kVec>
__global__ void gemv_kernel(const bf16* __restrict__ W, const bf16* __restrict__ x, int64_t rows, int64_t cols,
                            const bf16* __restrict__ bias, float alpha, bool accumulate, float* __restrict__ y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + warp;
  const int64_t t = blockIdx.y;
  if (r >= rows) return;
  const float acc = warp_sum(lane_dot<kVec>(W + r * cols, x + t * cols, cols, lane));
  if (lane == 0) {
    float v = acc + (bias ? __bfloat162float(bias[r]) : 0.f);
    float* out = y + t * rows + r;
    *out = (accumulate ? *out : 0.f) + alpha * v;
  }
}

template <bool kVec>
__global__ void gemv_swiglu_kernel(const bf16* __restrict__ W, const bf16* __restrict__ x, int64_t rows, int64_t cols,
                                   const bf16* __restrict__ bias, bf16* __restrict__ act) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t r = int64_t(blockIdx.x) * kRowsPerBlock + warp;
  if (r >= rows) return;
  const float g = warp_sum(lane_dot<kVec>(W + r * cols, x, cols, lane));
  const float u = warp_sum(lane_dot<kVec>(W + (rows + r) * cols, x, cols, lane));
  if (lane == 0)
    act[r] = swiglu(g + (bias ? __bfloat162float(bias[r]) : 0.f), u + (bias ? __bfloat162float(bias[rows + r]) : 0.f));
}

__global__ void bias_residual_kernel(const float* __restrict__ tmp, const bf16* __restrict__ bias, int64_t n,
                                     int64_t rows, float alpha, bool accumulate, float* __restrict__ y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * rows) return;
  const float v = tmp[i] + (bias ? __bfloat162float(bias[i % rows]) : 0.f);
  y[i] = (accumulate ? y[i] : 0.f) + alpha * v;
}

}  // namespace

void launch_gemv(const bf16* W, const bf16* x, int64_t n, int64_t rows, int64_t cols, const bf16* bias, float alpha,
                 bool accumulate, float* y, cudaStream_t stream) {
  const dim3 grid(unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), unsigned(n));
  const dim3 block(32 * kRowsPerBlock);
  if (cols % 8 == 0) {
    gemv_kernel<true><<<grid, block, 0, stream>>>(W, x, rows, cols, bias, alpha, accumulate, y);
  } else {
    gemv_kernel<false><<<grid, block, 0, stream>>>(W, x, rows, cols, bias, alpha, accumulate, y);
  }
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_gemv_swiglu(const bf16* W, const bf16* x, int64_t rows, int64_t cols, const bf16* bias, bf16* act,
                        cudaStream_t stream) {
  const dim3 grid(unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock));
  if (cols % 8 == 0) {
    gemv_swiglu_kernel<true><<<grid, 32 * kRowsPerBlock, 0, stream>>>(W, x, rows, cols, bias, act);
  } else {
    gemv_swiglu_kernel<false><<<grid, 32 * kRowsPerBlock, 0, stream>>>(W, x, rows, cols, bias, act);
  }
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_bias_residual(const float* tmp, const bf16* bias, int64_t n, int64_t rows, float alpha, bool accumulate,
                          float* y, cudaStream_t stream) {
  const int64_t count = n * rows;
  bias_residual_kernel<<<unsigned((count + 255) / 256), 256, 0, stream>>>(tmp, bias, n, rows, alpha, accumulate, y);
  CTX_CUDA_CHECK_LAUNCH();
}

}  // namespace ctx::cuda
