// The fused dequantize-GEMV of decode and the bf16 dequantization of prefill (quant_kernels.h), one
// kernel template over a format policy (quant_formats.cuh).
//
// GEMV: a block of 8 warps takes a tile of 16 rows (with SwiGLU the gate tile and its up tile) and the
// warps split its 64-column chunks (warp w: chunks w, w + 8, ...), so that a block streams contiguous
// 4 KiB (4-bit) or 8 KiB (8-bit) pieces. Per chunk a lane loads its codes with one or two 16-byte
// loads and its rows' scales with one, turns them into mma.m16n8k16 A fragments in registers (integer
// codes: a mask, a magic-number OR and one bf16x2 subtraction per 2 weights (q4_0), or byte permutes
// through float (int8); nf4/fp4: a table lookup per weight in shared memory), and the tensor cores
// multiply them with the input (B: the same x in every column). Products are exact; each group of 32
// columns is summed by the tensor cores in float32 and scaled once (fp16 d, nf4 absmax) into float32
// accumulators. The warps' partial sums meet in shared memory; 16 threads run the epilogue (bias,
// alpha/residual, SwiGLU: gemv_common.cuh). One wave of persistent blocks, the input (or its fused
// RMSNorm) staged once per block in the B fragment order; each warp's first chunks of weights are
// loaded before pdl_wait(), the next tile's while the block reduces the current one.
#include <algorithm>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/gemv_common.cuh"
#include "core/cuda/kernels/mma_sm80.cuh"
#include "core/cuda/kernels/pdl.cuh"
#include "core/cuda/kernels/quant_formats.cuh"
#include "core/cuda/kernels/quant_kernels.h"

namespace ctx::cuda {

namespace {

using namespace quant_device;

constexpr int kWarps = kRowsPerBlock;  // the launch_one_wave() block

template <class F>
constexpr int kXWords = F::kDup ? 64 : 32;  // staged input words (bf16x2) per chunk

struct QuantGemvArgs {
  QuantMatrixView w;
  GemvInput in;
  int64_t tiles;     // tiles to compute (SwiGLU: the gate tiles)
  int64_t up_tile0;  // SwiGLU: the first up tile (gate tile T pairs with up_tile0 + T)
  int64_t rows;      // outputs: w.rows, or ff with SwiGLU
  GemvEpilogue out;
};

template <class F>
struct ChunkData {
  uint32_t c[F::kLaneBytes / 4];
  float s[2][2];  // [row half][group]
};

// Weights only: safe before pdl_wait(). Read once, so they bypass L1 (__ldcs: evict-first).
template <class F>
__device__ inline void load_chunk(const QuantMatrixView& w, int64_t tile, int64_t chunk, int lane, ChunkData<F>& d) {
  const uint4* p = reinterpret_cast<const uint4*>(lane_codes(w, tile, chunk, lane, F::kLaneBytes));
#pragma unroll
  for (int v = 0; v < F::kLaneBytes / 16; ++v) {
    const uint4 u = __ldcs(p + v);
    d.c[4 * v] = u.x, d.c[4 * v + 1] = u.y, d.c[4 * v + 2] = u.z, d.c[4 * v + 3] = u.w;
  }
  F::chunk_scales(w, tile, chunk, lane / 4, d.s);
}

// The input in the B fragment order of every chunk (quant_formats.cuh x_word), zeros past cols: x, or
// with kNorm bf16(norm_weight * bf16(hidden / rms(hidden))) as launch_rmsnorm computes it. Whole block.
template <class F, bool kNorm>
__device__ inline void stage_input(const GemvInput& in, int64_t cols, int64_t chunks, uint32_t* xs) {
  float inv = 0.f;
  if constexpr (kNorm) {
    float ss = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) ss += in.hidden[c] * in.hidden[c];
    inv = rsqrtf(block_sum(ss) / float(cols) + in.eps);
  }
  auto bits = [&](int64_t c) -> uint32_t {
    if (c >= cols) return 0u;
    if constexpr (kNorm) {
      return __bfloat16_as_ushort(__float2bfloat16(__bfloat162float(in.norm_weight[c]) * round_bf16(in.hidden[c] * inv)));
    } else {
      return __bfloat16_as_ushort(in.x[c]);
    }
  };
  if constexpr (F::kDup) {
    for (int64_t c = threadIdx.x; c < chunks * 64; c += blockDim.x) {
      const int j = int(c % 64);
      const uint32_t v = bits(c);
      xs[(c / 64) * 64 + x_word(j / 8, j % 4, (j % 8) / 4)] = v | v << 16;
    }
  } else {
    for (int64_t p = threadIdx.x; p < chunks * 32; p += blockDim.x) {
      const int64_t c = 2 * p;
      const int j = int(c % 64);
      xs[(c / 64) * 32 + x_word(j / 16, (j % 8) / 2, (j % 16) / 8)] = bits(c) | bits(c + 1) << 16;
    }
  }
  __syncthreads();
}

// acc[j][h] += the chunk's dot products of rows g + 8 h of tile j, scaled per group.
template <class F, int kTiles>
__device__ inline void chunk_dots(const ChunkData<F> (&d)[kTiles], const uint4* xs, const uint32_t* lut, uint32_t lane4,
                                  float (&acc)[kTiles][2]) {
  constexpr int kPieces = F::kSteps / 2;
  uint4 x[kPieces];
  const int t = (lane4 / 4) % 4;
#pragma unroll
  for (int q = 0; q < kPieces; ++q) x[q] = xs[q * 4 + t];
#pragma unroll
  for (int j = 0; j < kTiles; ++j) {
#pragma unroll
    for (int grp = 0; grp < 2; ++grp) {
      float c[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int s = grp * kPieces; s < (grp + 1) * kPieces; ++s) {
        uint32_t a[4];
        F::fragment(d[j].c, s, lut, lane4, a);
        mma::mma_bf16_16816(c, a, s % 2 ? x[s / 2].z : x[s / 2].x, s % 2 ? x[s / 2].w : x[s / 2].y);
      }
      acc[j][0] = fmaf(c[0], d[j].s[0][grp], acc[j][0]);
      acc[j][1] = fmaf(c[2], d[j].s[1][grp], acc[j][1]);
    }
  }
}

template <class F, bool kNorm, bool kSwiglu>
__global__ void __launch_bounds__(32 * kWarps, 2) quant_gemv_kernel(QuantGemvArgs a) {
  constexpr int kTiles = kSwiglu ? 2 : 1;
  // Chunks in flight per warp: 64 bytes of codes per lane (plus the scales).
  constexpr int kU = 4 / (F::kLaneBytes / 16) / kTiles > 0 ? 4 / (F::kLaneBytes / 16) / kTiles : 1;
  extern __shared__ uint4 staged_x[];
  __shared__ float partial[2][kTiles][kWarps][16];
  __shared__ uint32_t lut[F::kDup ? Code4Format::kTableWords : 1];
  const QuantMatrixView& w = a.w;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t lane4 = 4u * uint32_t(lane);
  const int64_t chunks = w.chunks;

  ChunkData<F> d[kU][kTiles];
  auto load_round = [&](int64_t tile, int64_t c0) {
#pragma unroll
    for (int u = 0; u < kU; ++u)
#pragma unroll
      for (int j = 0; j < kTiles; ++j)
        if (c0 + kWarps * u < chunks) load_chunk<F>(w, tile + j * a.up_tile0, c0 + kWarps * u, lane, d[u][j]);
  };
  int64_t tile = blockIdx.x;
  load_round(tile, warp);
  if constexpr (F::kDup) {
    for (int e = threadIdx.x; e < Code4Format::kTableWords; e += blockDim.x) {
      float v = 0.f;
#pragma unroll
      for (int k = 0; k < 16; ++k)
        if (k == e / 64) v = w.code_values[k];  // constant indices: the parameter is read in place
      lut[e] = e % 64 < 32 ? code_entry(v) : 0u;
    }
  }
  pdl_wait();
  pdl_trigger();
  stage_input<F, kNorm>(a.in, w.cols, chunks, reinterpret_cast<uint32_t*>(staged_x));  // ends with __syncthreads()
  for (int p = 0; tile < a.tiles; tile += gridDim.x, p ^= 1) {
    float acc[kTiles][2] = {};
    for (int64_t c0 = warp; c0 < chunks; c0 += kWarps * kU) {
      if (c0 != warp) load_round(tile, c0);
#pragma unroll
      for (int u = 0; u < kU; ++u)
        if (c0 + kWarps * u < chunks)
          chunk_dots<F, kTiles>(d[u], staged_x + (c0 + kWarps * u) * (kXWords<F> / 4), lut, lane4, acc);
    }
    if (tile + gridDim.x < a.tiles) load_round(tile + gridDim.x, warp);
    if (lane % 4 == 0) {
#pragma unroll
      for (int j = 0; j < kTiles; ++j) {
        partial[p][j][warp][lane / 4] = acc[j][0];
        partial[p][j][warp][lane / 4 + 8] = acc[j][1];
      }
    }
    __syncthreads();  // partial[p] is written again two tiles later, after the next tile's barrier
    if (threadIdx.x < 16) {
      const int i = threadIdx.x;
      const TileRows rows = tile_rows(w, tile);
      if (i < rows.valid) {
        float dot[kTiles];
#pragma unroll
        for (int j = 0; j < kTiles; ++j) {
          float s = 0.f;
#pragma unroll
          for (int k = 0; k < kWarps; ++k) s += partial[p][j][k][i];
          if constexpr (F::kRowScale) s *= F::row_scale(w, tile + j * a.up_tile0, i);
          dot[j] = s;
        }
        gemv_store<kSwiglu>(a.out, a.rows, rows.row0 + i, dot);
      }
    }
  }
}

template <bool kSwiglu>
void launch_quant_variant(const QuantGemvArgs& a, cudaStream_t stream) {
  CTX_CHECK(a.in.hidden ? a.in.norm_weight != nullptr : a.in.x != nullptr, "GEMV input");
  dispatch_format(a.w.format, [&]<class F>() {
    const size_t smem = size_t(a.w.chunks) * kXWords<F> * 4;
    auto pick = [&](auto kernel) { launch_one_wave(kernel, a.tiles, smem, stream, a); };
    a.in.hidden ? pick(quant_gemv_kernel<F, true, kSwiglu>) : pick(quant_gemv_kernel<F, false, kSwiglu>);
  });
}

// Rows [r0, r1), 8 columns per thread (cols % 8 == 0: one 16-byte store) or 1.
template <class F, int kCols>
__global__ void dequantize_kernel(QuantMatrixView w, int64_t r0, int64_t r1, bf16* __restrict__ out) {
  __shared__ float table[16];
  if (threadIdx.x == 0) {
#pragma unroll
    for (int k = 0; k < 16; ++k) table[k] = w.code_values[k];
  }
  __syncthreads();
  const int64_t per_row = w.cols / kCols;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < (r1 - r0) * per_row;
  float v[kCols];
  const int64_t r = r0 + (active ? i / per_row : 0), c0 = active ? (i % per_row) * kCols : 0;
  if (active) {
    const RowPos pos = row_pos(w, r);
#pragma unroll
    for (int k = 0; k < kCols; ++k) v[k] = F::value(w, pos.tile, pos.i, c0 + k, table);
  }
  pdl_wait();  // `out` may still be read by the previous GEMM
  pdl_trigger();
  if (!active) return;
  bf16* o = out + (r - r0) * w.cols + c0;
  if constexpr (kCols == 8) {
    uint32_t packed[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) packed[k] = mma::pack_bf16(v[2 * k], v[2 * k + 1]);
    *reinterpret_cast<uint4*>(o) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  } else {
    o[0] = __float2bfloat16(v[0]);
  }
}

}  // namespace

void launch_quant_gemv(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, float alpha, bool accumulate,
                       float* y, cudaStream_t stream) {
  launch_quant_variant<false>(QuantGemvArgs{w, in, w.tiles, 0, w.rows, GemvEpilogue{bias, alpha, accumulate, y, nullptr}},
                              stream);
}

void launch_quant_gemv_swiglu(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, bf16* act,
                              cudaStream_t stream) {
  CTX_CHECK(w.rows % 2 == 0, "SwiGLU GEMV of a matrix with ", w.rows, " rows");
  const int64_t ff = w.rows / 2;
  const RowPos up = row_pos(w, ff);
  // The up rows must start a tile and follow the gate tiles' order (two stacked parts, or ff % 16 == 0).
  CTX_CHECK(up.i == 0 && up.tile == (ff + 15) / 16 && w.tiles == 2 * up.tile, "SwiGLU GEMV: the up rows of [gate; up] (",
            ff, " rows each) do not start a tile");
  launch_quant_variant<true>(QuantGemvArgs{w, in, up.tile, up.tile, ff, GemvEpilogue{bias, 1.f, false, nullptr, act}},
                             stream);
}

void launch_dequantize(const QuantMatrixView& w, int64_t r0, int64_t r1, bf16* out, cudaStream_t stream) {
  CTX_CHECK(0 <= r0 && r0 < r1 && r1 <= w.rows, "dequantize rows [", r0, ", ", r1, ") of ", w.rows);
  dispatch_format(w.format, [&]<class F>() {
    auto go = [&](auto kernel, int64_t threads) {
      launch_pdl(kernel, dim3(unsigned((threads + 255) / 256)), dim3(256), 0, stream, w, r0, r1, out);
    };
    if (w.cols % 8 == 0) {
      go(dequantize_kernel<F, 8>, (r1 - r0) * w.cols / 8);
    } else {
      go(dequantize_kernel<F, 1>, (r1 - r0) * w.cols);
    }
  });
}

}  // namespace ctx::cuda
