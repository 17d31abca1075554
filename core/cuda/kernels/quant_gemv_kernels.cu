// The fused dequantize-GEMV of decode and the bf16 dequantization of prefill (quant_kernels.h), one
// kernel template over a format policy (quant_formats.cuh). The GEMV keeps the bf16 GEMV's techniques
// (linear_kernels.cu): one warp per output row (two rows for SwiGLU), a one-wave persistent grid, the
// first loads of weights issued before pdl_wait(), the input (or its fused RMSNorm) staged once per
// block in shared memory, bias/residual/SwiGLU in the epilogue. A lane takes whole groups of 32
// weights, g = lane, lane + 32, ...: one or two 16-byte code loads plus one scale per group, decoded
// in registers and multiplied with 32 staged inputs in float32.
//
// The staged input is laid out so that these reads are free of bank conflicts: each group's 64 bytes
// are four 16-byte pieces, and group g stores piece k in slot (k + g / 2) % 4. A 16-byte shared load is
// served 8 lanes at a time; lanes g .. g + 7 then hit 8 distinct 16-byte bank groups (g % 2 picks the
// half of a 128-byte row, (k + g / 2) % 4 the quarter), where the natural order would put 4 lanes on
// the same banks. Columns past cols (int8 rows padded to whole groups) are staged as zeros.
#include <algorithm>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/gemv_common.cuh"
#include "core/cuda/kernels/pdl.cuh"
#include "core/cuda/kernels/quant_formats.cuh"
#include "core/cuda/kernels/quant_kernels.h"

namespace ctx::cuda {

namespace {

using namespace quant_device;

// Groups per lane and row loaded before pdl_wait(), and in flight in the main loop: 64 bytes of codes
// per lane, as the bf16 GEMV (4 groups of 4-bit codes, 2 of 8-bit ones), split between the two rows
// of SwiGLU; more would cost occupancy in registers.
template <class F, int kRows>
constexpr int kInFlight = 4 / F::kVecs / kRows > 0 ? 4 / F::kVecs / kRows : 1;

struct QuantGemvArgs {
  QuantMatrixView w;
  GemvInput in;
  int64_t rows;  // outputs: w.rows, or w.rows / 2 with SwiGLU
  GemvEpilogue out;
};

// The code table into shared memory (one thread, constant indices: the parameter is read in place).
__device__ inline void copy_code_values(const QuantMatrixView& w, float* table) {
  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < 16; ++i) table[i] = w.code_values[i];
  }
}

template <class F>
struct GroupData {
  uint4 c[F::kVecs];
  float s;
};

// Weights only: safe before pdl_wait(). Read once, so they bypass L1 (__ldcs: evict-first).
template <class F>
__device__ inline GroupData<F> load_group(const QuantMatrixView& w, const RowRef& row, int64_t g) {
  GroupData<F> d;
  const uint4* p = reinterpret_cast<const uint4*>(w.codes + (row.r * w.groups + g) * (16 * F::kVecs));
#pragma unroll
  for (int v = 0; v < F::kVecs; ++v) d.c[v] = __ldcs(p + v);
  d.s = F::scale(w, row, g);
  return d;
}

// acc[j] += scale_j * sum over group g's 32 weights of row j of value * x, for the warp's kRows rows
// (SwiGLU's gate and up share each staged input piece and its conversion to float).
template <class F, int kRows>
__device__ inline void group_dots(const GroupData<F>* const (&d)[kRows], const uint4* xs, int64_t g, const float* table,
                                  float (&acc)[kRows]) {
  float s[kRows];
#pragma unroll
  for (int j = 0; j < kRows; ++j) s[j] = 0.f;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const uint4 xv = x_piece(xs, g, k);
    const __nv_bfloat162* xb = reinterpret_cast<const __nv_bfloat162*>(&xv);
    float x[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(xb[i]);
      x[2 * i] = f.x, x[2 * i + 1] = f.y;
    }
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      float v[8];
      F::dequant(d[j]->c, k, table, v);
#pragma unroll
      for (int i = 0; i < 8; ++i) s[j] = fmaf(v[i], x[i], s[j]);
    }
  }
#pragma unroll
  for (int j = 0; j < kRows; ++j) acc[j] = fmaf(s[j], d[j]->s, acc[j]);
}

template <class F, int kN>
__device__ inline void preload_groups(const QuantMatrixView& w, const RowRef& row, int lane, GroupData<F> (&first)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
    const int64_t g = lane + 32 * i;
    if (g < w.groups) first[i] = load_group<F>(w, row, g);
  }
}

// This lane's part of the dot products of the warp's rows; the caller sums over the warp.
template <class F, int kRows, int kN>
__device__ inline void lane_dots(const QuantMatrixView& w, const RowRef (&row)[kRows], const uint4* xs, int lane,
                                 const GroupData<F> (&first)[kRows][kN], const float* table, float (&acc)[kRows]) {
#pragma unroll
  for (int j = 0; j < kRows; ++j) acc[j] = 0.f;
#pragma unroll
  for (int i = 0; i < kN; ++i) {
    const int64_t g = lane + 32 * i;
    const GroupData<F>* d[kRows];
#pragma unroll
    for (int j = 0; j < kRows; ++j) d[j] = &first[j][i];
    if (g < w.groups) group_dots<F, kRows>(d, xs, g, table, acc);
  }
  // kN groups per row in flight per round, the last round's predicated (no serial tail of single loads).
  for (int64_t g = lane + 32 * kN; g < w.groups; g += 32 * kN) {
    GroupData<F> next[kRows][kN];
#pragma unroll
    for (int u = 0; u < kN; ++u)
#pragma unroll
      for (int j = 0; j < kRows; ++j)
        if (g + 32 * u < w.groups) next[j][u] = load_group<F>(w, row[j], g + 32 * u);
#pragma unroll
    for (int u = 0; u < kN; ++u) {
      const GroupData<F>* d[kRows];
#pragma unroll
      for (int j = 0; j < kRows; ++j) d[j] = &next[j][u];
      if (g + 32 * u < w.groups) group_dots<F, kRows>(d, xs, g + 32 * u, table, acc);
    }
  }
}

// xs[slot(c)] = x[c] for c < cols (whole block). kVec: cols % 8 == 0, 16-byte copies.
template <bool kVec>
__device__ inline void stage_x(const bf16* x, int64_t cols, bf16* xs) {
  const XSlot slot;
  if constexpr (kVec) {
    const uint4* x4 = reinterpret_cast<const uint4*>(x);
    for (int64_t i = threadIdx.x; i < cols / 8; i += blockDim.x) *reinterpret_cast<uint4*>(xs + slot(8 * i)) = x4[i];
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) xs[slot(c)] = x[c];
  }
}

// kNorm: the input is RMSNorm(in.hidden). kVec: cols % 8 == 0. kSwiglu: rows r and a.rows + r of W
// give the gate and the up projection of act[r]. Tiles of kRowsPerBlock rows: blockIdx.x,
// blockIdx.x + gridDim.x, ... (the grid is at most one wave, so the input is staged once per block).
template <class F, bool kNorm, bool kVec, bool kSwiglu>
__global__ void __launch_bounds__(32 * kRowsPerBlock, 2) quant_gemv_kernel(QuantGemvArgs a) {
  extern __shared__ uint4 staged_x[];
  __shared__ float table[16];
  constexpr int kRows = kSwiglu ? 2 : 1;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t tiles = (a.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  RowRef row[kRows];
  constexpr int kN = kInFlight<F, kRows>;
  GroupData<F> first[kRows][kN];
  auto preload = [&](int64_t tile) {
    const int64_t r = tile * kRowsPerBlock + warp;
    if (r >= a.rows) return;
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      row[j] = row_ref(a.w, r + j * a.rows);
      preload_groups<F, kN>(a.w, row[j], lane, first[j]);
    }
  };
  copy_code_values(a.w, table);
  int64_t tile = blockIdx.x;
  preload(tile);
  pdl_wait();
  pdl_trigger();
  bf16* xs = reinterpret_cast<bf16*>(staged_x);
  const XSlot slot;
  for (int64_t c = a.w.cols + threadIdx.x; c < a.w.groups * 32; c += blockDim.x) xs[slot(c)] = __float2bfloat16(0.f);
  if constexpr (kNorm) {
    stage_rmsnorm<kVec>(a.in, a.w.cols, xs, slot);  // ends with __syncthreads()
  } else {
    stage_x<kVec>(a.in.x, a.w.cols, xs);
    __syncthreads();
  }
  while (true) {
    const int64_t r = tile * kRowsPerBlock + warp;
    if (r < a.rows) {
      float dot[kRows];
      lane_dots<F, kRows, kN>(a.w, row, staged_x, lane, first, table, dot);
#pragma unroll
      for (int j = 0; j < kRows; ++j) dot[j] = warp_sum(dot[j]);
      if (lane == 0) gemv_store<kSwiglu>(a.out, a.rows, r, dot);
    }
    tile += gridDim.x;
    if (tile >= tiles) break;
    preload(tile);
  }
}

template <bool kSwiglu>
void launch_quant_variant(const QuantGemvArgs& a, cudaStream_t stream) {
  CTX_CHECK(a.in.hidden ? a.in.norm_weight != nullptr : a.in.x != nullptr, "GEMV input");
  CTX_CHECK(a.w.groups * 32 >= a.w.cols && a.rows * (kSwiglu ? 2 : 1) == a.w.rows, "quantized GEMV shape");
  const int64_t tiles = (a.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  const bool vec = a.w.cols % 8 == 0;
  const size_t smem = size_t(a.w.groups) * 64;  // 32 bf16 per group
  dispatch_format(a.w.format, [&]<class F>() {
    auto pick = [&](auto kernel) { launch_one_wave(kernel, tiles, smem, stream, a); };
    if (a.in.hidden) {
      vec ? pick(quant_gemv_kernel<F, true, true, kSwiglu>) : pick(quant_gemv_kernel<F, true, false, kSwiglu>);
    } else {
      vec ? pick(quant_gemv_kernel<F, false, true, kSwiglu>) : pick(quant_gemv_kernel<F, false, false, kSwiglu>);
    }
  });
}

// One thread per group of rows [r0, r1): its 32 values scaled and rounded to bf16.
template <class F>
__global__ void dequantize_kernel(QuantMatrixView w, int64_t r0, int64_t r1, bf16* __restrict__ out) {
  __shared__ float table[16];
  copy_code_values(w, table);
  __syncthreads();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = i < (r1 - r0) * w.groups;
  const int64_t r = r0 + (active ? i / w.groups : 0), g = active ? i % w.groups : 0;
  GroupData<F> d;
  if (active) d = load_group<F>(w, row_ref(w, r), g);
  pdl_wait();  // `out` may still be read by the previous GEMM
  pdl_trigger();
  if (!active) return;
  bf16* o = out + (r - r0) * w.cols + g * 32;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    float v[8];
    F::dequant(d.c, k, table, v);
    const int64_t c = g * 32 + 8 * k;
    if (w.cols % 8 == 0 && c + 8 <= w.cols) {
      __nv_bfloat162 packed[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) packed[j] = __floats2bfloat162_rn(v[2 * j] * d.s, v[2 * j + 1] * d.s);
      *reinterpret_cast<uint4*>(o + 8 * k) = *reinterpret_cast<const uint4*>(packed);
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j)
        if (c + j < w.cols) o[8 * k + j] = __float2bfloat16(v[j] * d.s);
    }
  }
}

}  // namespace

void launch_quant_gemv(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, float alpha, bool accumulate,
                       float* y, cudaStream_t stream) {
  launch_quant_variant<false>(QuantGemvArgs{w, in, w.rows, GemvEpilogue{bias, alpha, accumulate, y, nullptr}}, stream);
}

void launch_quant_gemv_swiglu(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, bf16* act,
                              cudaStream_t stream) {
  CTX_CHECK(w.rows % 2 == 0, "SwiGLU GEMV of a matrix with ", w.rows, " rows");
  launch_quant_variant<true>(QuantGemvArgs{w, in, w.rows / 2, GemvEpilogue{bias, 1.f, false, nullptr, act}}, stream);
}

void launch_dequantize(const QuantMatrixView& w, int64_t r0, int64_t r1, bf16* out, cudaStream_t stream) {
  CTX_CHECK(0 <= r0 && r0 < r1 && r1 <= w.rows, "dequantize rows [", r0, ", ", r1, ") of ", w.rows);
  const int64_t threads = (r1 - r0) * w.groups;
  dispatch_format(w.format, [&]<class F>() {
    launch_pdl(dequantize_kernel<F>, dim3(unsigned((threads + 255) / 256)), dim3(256), 0, stream, w, r0, r1, out);
  });
}

}  // namespace ctx::cuda
