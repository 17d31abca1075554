// The pieces of the quantized decode GEMV that its one-matrix kernels (quant_gemv_kernels.cu) and the
// chain of GEMVs in one persistent kernel (quant_gemv_chain.cu) share (internal to core/cuda/kernels):
// each warp's ring of cp.async stages, the staged input and the tensor-core dot products of one chunk
// (quant_gemv_kernels.cu's header comment describes the scheme).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/base/error.h"
#include "core/cuda/kernels/gemv_common.cuh"
#include "core/cuda/kernels/mma_sm80.cuh"
#include "core/cuda/kernels/quant_formats.cuh"
#include "core/cuda/kernels/quant_kernels.h"
#include "core/cuda/kernels/strided_loads.cuh"

namespace ctx::cuda::qgemv {

using namespace quant_device;

// One warp's ring stage: kTiles chunks of codes (F::kLaneBytes / 16 pieces of 32 x 16 bytes) and
// scales (F::kMaxScaleBytes per lane: none for int8, whose row scales are applied in the epilogue, 8
// for q8_0/q4_0, 16 for nf4/fp4, which may use 8 of them).
template <class F, int kTiles>
constexpr int kRoundBytes = kTiles * kLanes * (F::kLaneBytes + F::kMaxScaleBytes);
// Stages per warp: about 48 KiB of ring per block of kWarps warps, 3 to 6. An 80 KiB ring (4-5 chunks
// in flight per warp instead of 2-3, a launch argument then) decoded no faster on an H100 with any
// format (bench/RESULTS.md, fifth session): the warps are not waiting on loads in flight.
template <class F, int kTiles, int kWarps>
constexpr int kStages = std::max(3, std::min(6, 49152 / (kWarps * kRoundBytes<F, kTiles>)));

// The bytes of the format's shared-memory table (nf4/fp4; 0 for the others).
template <class F>
constexpr size_t kLutBytes = size_t(F::kLutWords) * 4;

// cp.async of 16 or 8 bytes, commit and wait, as compiler barriers for memory ("memory" clobbers): the
// ring's stages are read with plain shared loads, which must stay between the wait for their copy and
// the copy that refills the stage.
__device__ __forceinline__ void copy_async(uint32_t dst, const void* src, int bytes) {
  if (bytes == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(dst), "l"(src) : "memory");
  }
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// xs[c] = the input (x, or with kNorm bf16(norm_weight * bf16(hidden / rms(hidden))) as launch_rmsnorm
// computes it) for c < cols, 0 up to `padded`. Whole block; 16-byte loads, 4 in flight, when
// cols % 8 == 0.
template <bool kNorm>
__device__ inline void stage_input(const GemvInput& in, int64_t cols, int64_t padded, bf16* xs) {
  for (int64_t c = cols + threadIdx.x; c < padded; c += blockDim.x) xs[c] = __float2bfloat16(0.f);
  const bool vec = cols % 8 == 0;
  if constexpr (kNorm) {
    vec ? stage_rmsnorm<true>(in, cols, xs) : stage_rmsnorm<false>(in, cols, xs);  // end with __syncthreads()
  } else {
    if (vec) {
      uint4* d4 = reinterpret_cast<uint4*>(xs);
      for_each_strided_x4(reinterpret_cast<const uint4*>(in.x), cols / 8, [&](int64_t i, const uint4& v) { d4[i] = v; });
    } else {
      for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) xs[c] = in.x[c];
    }
    __syncthreads();
  }
}

// The lane's two 16-byte input pieces of chunk c (one per group of 32 columns) from its input row in
// natural order xs (shared memory, or global memory for the batched kernels).
__device__ inline void load_x(const uint4* xs, int64_t c, int lane, uint4 (&x)[2]) {
#pragma unroll
  for (int grp = 0; grp < 2; ++grp) x[grp] = xs[x_piece_index(c, grp, lane % 4)];
}

// The fused RMSNorm without staging (GemvInput::sumsq): sum(hidden^2) from the partials, the same bits
// in every lane of every warp (lane l adds parts l, l + 32, ... in order; warp_sum's butterfly gives
// every lane the same sum, a + b being b + a).
__device__ inline float sumsq_total(const float* parts, int64_t n, int lane) {
  float s = 0.f;
  for (int64_t k = lane; k < n; k += 32) s += parts[k];
  return warp_sum(s);
}
// The lane's hidden values of chunk c's two input pieces (load_x's columns), float32.
__device__ inline void load_hidden(const float* hidden, int64_t c, int lane, float4 (&h)[2][2]) {
  const float4* h4 = reinterpret_cast<const float4*>(hidden);
#pragma unroll
  for (int grp = 0; grp < 2; ++grp) {
    const int64_t i = x_piece_index(c, grp, lane % 4);
    h[grp][0] = h4[2 * i], h[grp][1] = h4[2 * i + 1];
  }
}
// x holds the pieces' norm weights (load_x of norm_weight) and gets the inputs stage_rmsnorm stages:
// bf16(weight * bf16(hidden * inv)).
__device__ inline void normalize_pieces(const float4 (&h)[2][2], float inv, uint4 (&x)[2]) {
#pragma unroll
  for (int grp = 0; grp < 2; ++grp) {
    const float v[8] = {h[grp][0].x, h[grp][0].y, h[grp][0].z, h[grp][0].w,
                        h[grp][1].x, h[grp][1].y, h[grp][1].z, h[grp][1].w};
    uint32_t* words = reinterpret_cast<uint32_t*>(&x[grp]);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float2 wk = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&words[k]));
      const __nv_bfloat162 o =
          __floats2bfloat162_rn(wk.x * round_bf16(v[2 * k] * inv), wk.y * round_bf16(v[2 * k + 1] * inv));
      words[k] = *reinterpret_cast<const uint32_t*>(&o);
    }
  }
}

// acc[j][h][e] += chunk c's dot products of rows g + 8 h of tile j with MMA column 2t + e (one
// column: every column holds the same input; kCols 2: column n holds input row n), scaled per group;
// `round` is this warp's ring stage holding the chunk's codes and scales, x the lane's input pieces of
// the chunk (load_x).
template <class F, int kTiles, int kCols>
__device__ inline void chunk_dots(const QuantMatrixView& w, const uint8_t* round, const uint4 (&x)[2],
                                  const uint32_t* lut, int lane, float (&acc)[kTiles][2][kCols]) {
  constexpr int kHalf = F::kSteps / 2;  // steps per group of 32 columns
  const uint32_t lane4 = 4u * uint32_t(lane);
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
    const uint8_t* r = round + j * (kRoundBytes<F, kTiles> / kTiles);
    uint32_t codes[F::kLaneBytes / 4];
#pragma unroll
    for (int v = 0; v < F::kLaneBytes / 16; ++v) {
      const uint4 u = *reinterpret_cast<const uint4*>(r + v * 512 + lane * 16);
      codes[4 * v] = u.x, codes[4 * v + 1] = u.y, codes[4 * v + 2] = u.z, codes[4 * v + 3] = u.w;
    }
    uint32_t raw[4] = {0u, 0u, 0u, 0u};
    const uint8_t* sp = r + F::kLaneBytes * kLanes + lane * F::kMaxScaleBytes;
    if constexpr (F::kMaxScaleBytes == 16) {
      const uint4 u = *reinterpret_cast<const uint4*>(sp);
      raw[0] = u.x, raw[1] = u.y, raw[2] = u.z, raw[3] = u.w;
    } else if constexpr (F::kMaxScaleBytes == 8) {
      const uint2 u = *reinterpret_cast<const uint2*>(sp);
      raw[0] = u.x, raw[1] = u.y;
    }
    float s[2][2];
    F::decode_scales(w, raw, s);
#pragma unroll
    for (int grp = 0; grp < 2; ++grp) {
      float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int st = grp * kHalf; st < (grp + 1) * kHalf; ++st) {
        uint32_t a[4], b0, b1;
        F::fragment(codes, st, lut, lane4, a);
        F::b_regs(x[grp], st, b0, b1);
        mma::mma_bf16_16816(d, a, b0, b1);
      }
#pragma unroll
      for (int e = 0; e < kCols; ++e) {
        acc[j][0][e] = fmaf(d[e], s[0][grp], acc[j][0][e]);
        acc[j][1][e] = fmaf(d[2 + e], s[1][grp], acc[j][1][e]);
      }
    }
  }
}

// dot[j] = row i of tile tile + j * up_tile0 from the warps' partial sums partial(j, k) (k = 0 ..
// kWarps - 1, added in that order), times the input's scale and the row's scale where the format has
// row scales (int8).
template <class F, int kTiles, int kWarps, class Partial>
__device__ inline void tile_row_dots(const QuantMatrixView& w, int64_t tile, int64_t up_tile0, int i, float input_scale,
                                     Partial partial, float (&dot)[kTiles]) {
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < kWarps; ++k) s += partial(j, k);
    if constexpr (F::kRowScale) s = s * input_scale * F::row_scale(w, tile + j * up_tile0, i);
    dot[j] = s;
  }
}

// Whether w is a stacked [gate; up] matrix a SwiGLU GEMV takes: an even number of rows, the up rows
// starting a tile and following the gate tiles' order (two stacked parts, or ff % 16 == 0).
inline bool swiglu_stack_valid(const QuantMatrixView& w) {
  if (w.rows % 2 != 0) return false;
  const int64_t ff = w.rows / 2;
  const RowPos up = row_pos(w, ff);
  return up.i == 0 && up.tile == (ff + 15) / 16 && w.tiles == 2 * up.tile;
}

// The stacked [gate; up] matrix of a SwiGLU GEMV: ff rows each, gate tile T pairing with up tile
// gate_tiles + T. CTX_CHECKs swiglu_stack_valid.
struct SwigluTiles {
  int64_t ff = 0, gate_tiles = 0;
};
inline SwigluTiles swiglu_tiles(const QuantMatrixView& w) {
  CTX_CHECK(w.rows % 2 == 0, "SwiGLU GEMV of a matrix with ", w.rows, " rows");
  CTX_CHECK(swiglu_stack_valid(w), "SwiGLU GEMV: the up rows of [gate; up] (", w.rows / 2,
            " rows each) do not start a tile");
  return SwigluTiles{w.rows / 2, row_pos(w, w.rows / 2).tile};
}

// What one GEMV computes, as its own launch and as a stage of a chain: the output tiles (SwiGLU: the
// gate tiles, gate tile T pairing with up tile up_tile0 + T), the rows of outputs (SwiGLU: ff) and the
// epilogue. act set: the SwiGLU GEMV of a [gate; up] stack, act[r] = swiglu(gate_r + bias[r], up_r +
// bias[ff + r]) (CTX_CHECKs swiglu_tiles; alpha, accumulate and y unused); else y = (accumulate ? y :
// 0) + alpha * (W x + bias).
struct GemvOutputs {
  int64_t tiles = 0, up_tile0 = 0, rows = 0;
  GemvEpilogue out;
};
inline GemvOutputs gemv_outputs(const QuantMatrixView& w, const bf16* bias, float alpha, bool accumulate, float* y,
                                bf16* act) {
  if (!act) return GemvOutputs{w.tiles, 0, w.rows, GemvEpilogue{bias, alpha, accumulate, y, nullptr}};
  const SwigluTiles t = swiglu_tiles(w);
  return GemvOutputs{t.gate_tiles, t.gate_tiles, t.ff, GemvEpilogue{bias, 1.f, false, nullptr, act}};
}

}  // namespace ctx::cuda::qgemv
