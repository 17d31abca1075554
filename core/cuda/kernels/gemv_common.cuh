// Pieces shared by the decode GEMV kernels (internal to core/cuda/kernels): the bf16 GEMV
// (linear_kernels.cu) and the quantized one (quant_gemv_kernels.cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {

constexpr int kRowsPerBlock = 8;  // warps per block, one output row each

// Blocks of `kernel` (block threads, smem dynamic bytes) resident on the whole current device at once:
// one wave. Asked of the runtime once per (device, kernel, smem) and kept, since decode launches the
// GEMVs hundreds of times per token (the kernel's dynamic shared memory limit raised first:
// allow_dynamic_smem, pdl.cuh).
int64_t resident_blocks(const void* kernel, int threads, size_t smem);

// Launches a GEMV kernel of `warps` warps per block with programmatic dependent launch: one block per
// tile, at most one wave (the kernels loop over the remaining tiles).
template <class Args>
void launch_one_wave(void (*kernel)(Args), int64_t tiles, size_t smem, cudaStream_t stream, const Args& a,
                     int warps = kRowsPerBlock) {
  const dim3 block(32 * warps);
  const int64_t wave = resident_blocks(reinterpret_cast<const void*>(kernel), int(block.x), smem);
  launch_pdl(kernel, dim3(unsigned(tiles < wave ? tiles : wave)), block, smem, stream, a);
}

// L1 prefetches of what a GEMV's prologue and epilogues load besides the weights: the fused RMSNorm's
// weight and the biases and int8 row scales (written once at upload, so before pdl_wait()), the
// residual y an accumulating epilogue adds to (after pdl_wait(), as the tile begins). Without them
// each of those loads waits on DRAM or L2 where it stands: the RMSNorm staging after pdl_wait() and
// each tile's epilogue, on the critical path. Loads and arithmetic are unchanged (the same outputs
// bit for bit). gemv_prefetch(): on, or off with CTXLAB_GEMV_PREFETCH=0 (read once) for same-binary
// comparisons.
bool gemv_prefetch();
// The fused RMSNorm's weight (bf16 [cols]), one 128-byte line per thread. Whole block.
__device__ inline void prefetch_norm_weight(const GemvInput& in, int64_t cols) {
  if (!in.hidden) return;
  for (int64_t c = int64_t(threadIdx.x) * 64; c < cols; c += int64_t(blockDim.x) * 64) prefetch_l1(in.norm_weight + c);
}

// The GEMV epilogue of output row r (one lane calls it): y[r] = (accumulate ? y[r] : 0) + alpha *
// (dot[0] + bias[r]), or with kSwiglu act[r] = swiglu(dot[0] + bias[r], dot[1] + bias[rows + r]).
// Returns the value stored in y[r] (kSwiglu: 0).
struct GemvEpilogue {
  const bf16* bias;  // may be null
  float alpha;
  bool accumulate;
  float* y;   // plain epilogue
  bf16* act;  // SwiGLU epilogue
  // Plain epilogue of one input row, optional (the quantized GEMVs): sumsq[t] = the sum of the squares
  // of output tile t's stored y values (GemvInput::sumsq of the GEMV that normalizes y next).
  float* sumsq = nullptr;
};
template <bool kSwiglu>
__device__ inline float gemv_store(const GemvEpilogue& e, int64_t rows, int64_t r, const float* dot) {
  if constexpr (kSwiglu) {
    e.act[r] = swiglu(dot[0] + (e.bias ? __bfloat162float(e.bias[r]) : 0.f),
                      dot[1] + (e.bias ? __bfloat162float(e.bias[rows + r]) : 0.f));
    return 0.f;
  } else {
    const float v = dot[0] + (e.bias ? __bfloat162float(e.bias[r]) : 0.f);
    const float out = (e.accumulate ? e.y[r] : 0.f) + e.alpha * v;
    e.y[r] = out;
    return out;
  }
}

// xs[place(c)] = bf16(norm_weight[c] * bf16(hidden[c] / rms(hidden))), as launch_rmsnorm computes it.
// Whole block. Every block of the GEMV does this, so it must cost about one memory round trip, not one
// per element a thread handles: kVec (cols % 8 == 0) reads 4 floats per load and has 4 loads in
// flight. `place` maps a column to its shared-memory slot; it must keep runs of 4 columns starting
// at a multiple of 4 together (uint2 stores).
struct IdentityPlace {
  __device__ int64_t operator()(int64_t c) const { return c; }
};
template <bool kVec, class Place = IdentityPlace>
__device__ inline void stage_rmsnorm(const GemvInput& in, int64_t cols, bf16* xs, Place place = {}) {
  const int64_t step = blockDim.x;
  if constexpr (kVec) {
    const float4* h4 = reinterpret_cast<const float4*>(in.hidden);
    const uint2* w4 = reinterpret_cast<const uint2*>(in.norm_weight);  // 4 bf16
    const int64_t n4 = cols / 4;
    float ss = 0.f;
    for (int64_t c0 = threadIdx.x; c0 < n4; c0 += 4 * step) {
      float4 h[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) h[k] = c0 + k * step < n4 ? h4[c0 + k * step] : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
      for (int k = 0; k < 4; ++k) ss += h[k].x * h[k].x + h[k].y * h[k].y + h[k].z * h[k].z + h[k].w * h[k].w;
    }
    const float inv = rsqrtf(block_sum(ss) / float(cols) + in.eps);
    for (int64_t c0 = threadIdx.x; c0 < n4; c0 += 4 * step) {
      float4 h[4];
      uint2 w[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const bool ok = c0 + k * step < n4;
        h[k] = ok ? h4[c0 + k * step] : make_float4(0.f, 0.f, 0.f, 0.f);
        w[k] = ok ? w4[c0 + k * step] : make_uint2(0, 0);
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (c0 + k * step >= n4) break;
        const __nv_bfloat162* wb = reinterpret_cast<const __nv_bfloat162*>(&w[k]);
        const float2 w01 = __bfloat1622float2(wb[0]), w23 = __bfloat1622float2(wb[1]);
        __nv_bfloat162 out[2];
        out[0] = __floats2bfloat162_rn(w01.x * round_bf16(h[k].x * inv), w01.y * round_bf16(h[k].y * inv));
        out[1] = __floats2bfloat162_rn(w23.x * round_bf16(h[k].z * inv), w23.y * round_bf16(h[k].w * inv));
        *reinterpret_cast<uint2*>(xs + place(4 * (c0 + k * step))) = *reinterpret_cast<const uint2*>(out);
      }
    }
  } else {
    float ss = 0.f;
    for (int64_t e = threadIdx.x; e < cols; e += step) ss += in.hidden[e] * in.hidden[e];
    const float inv = rsqrtf(block_sum(ss) / float(cols) + in.eps);
    for (int64_t e = threadIdx.x; e < cols; e += step)
      xs[place(e)] = __float2bfloat16(__bfloat162float(in.norm_weight[e]) * round_bf16(in.hidden[e] * inv));
  }
  __syncthreads();
}

}  // namespace ctx::cuda
