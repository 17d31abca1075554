// The fused dequantize-GEMV of decode and the bf16 dequantization of prefill (quant_kernels.h), one
// kernel template over a format policy (quant_formats.cuh).
//
// GEMV: a block of 16 warps (8: CTXLAB_QGEMV_WARPS) takes a tile of 16 rows (with SwiGLU the gate tile
// and its up tile) and the warps split its 64-column chunks (warp w: chunks w, w + 16, ...), so that a
// block streams contiguous 8 KiB (4-bit) or 16 KiB (8-bit) pieces. Each warp streams its chunks through its own ring of
// shared-memory stages with cp.async (each lane copies and later reads only its own 16-byte pieces and
// scales, so no barrier is needed): kStages - 1 chunks stay in flight while it computes one, across
// tile boundaries, the first ones issued before pdl_wait(). Per chunk a lane turns its codes into
// mma.m16n8k16 A fragments in registers (q4_0: a mask, a magic-number OR and one bf16x2 subtraction per
// 2 weights; int8/q8_0: byte permutes through float; nf4/fp4: a table lookup per weight in shared
// memory) and its 16-byte input piece into B registers, and the tensor cores multiply them (every
// column of B holds x). Products are exact; each group of 32 columns is summed by the tensor cores in
// float32 and scaled once (fp16 d, nf4 absmax) into float32 accumulators. The warps' partial sums meet
// in shared memory; 16 threads run the epilogue (bias, alpha/residual, SwiGLU: gemv_common.cuh). One
// wave of persistent blocks; the input (or its fused RMSNorm) is staged once per block, as bf16 in
// natural order (the k order of the fragments is chosen so that a lane's B registers of a group are 8
// consecutive columns), and with up to 4096 columns each lane then keeps its pieces of it in
// registers for every tile (kXRegs), so that the loop reads only codes from shared memory. Where the
// GEMV that wrote the hidden state left its sums of squares (GemvInput::sumsq), a kXRegs GEMV with the
// fused RMSNorm stages nothing: each warp adds the partials and each lane normalizes its own pieces
// (kDirectX), with no block-wide barrier before the first chunk. LLM.int8() (w.int8_activations, int8 codes only) restages the staged input as
// int8 codes and scaled outliers (int8_activations.cuh) and multiplies each row's sum by the input's
// scale with the row scale: the same tensor-core pass over the same packed bytes.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/gemv_common.cuh"
#include "core/cuda/kernels/int8_activations.cuh"
#include "core/cuda/kernels/mma_sm80.cuh"
#include "core/cuda/kernels/pdl.cuh"
#include "core/cuda/kernels/quant_formats.cuh"
#include "core/cuda/kernels/quant_gemv_common.cuh"
#include "core/cuda/kernels/quant_kernels.h"
#include "core/cuda/kernels/strided_loads.cuh"

namespace ctx::cuda {

namespace {

using namespace quant_device;
using namespace qgemv;

struct QuantGemvArgs {
  QuantMatrixView w;
  GemvInput in;
  int64_t tiles;     // tiles to compute (SwiGLU: the gate tiles)
  int64_t up_tile0;  // SwiGLU: the first up tile (gate tile T pairs with up_tile0 + T)
  int64_t rows;      // outputs: w.rows, or ff with SwiGLU
  GemvEpilogue out;
  int64_t n = 1;     // batched kernels: input rows in.x [n][cols] (n <= kMaxGemvRows), outputs [n][rows]
  bool prefetch = false;  // gemv_prefetch()
};

// Dynamic shared memory: the format's table, the staged input (one row: chunks * 64 bf16; batched
// kernels read theirs from global memory) and the rings.
template <class F, int kTiles, int kWarps, bool kBatched>
constexpr size_t gemv_smem(int64_t chunks) {
  return kLutBytes<F> + (kBatched ? 0 : size_t(chunks) * 128) + size_t(kWarps) * kStages<F, kTiles, kWarps> * kRoundBytes<F, kTiles>;
}

// Chunks per warp whose input pieces a lane may hold in registers (kXRegs): 4, so with 16 warps
// matrices of up to 4096 columns (8 uint4, 32 registers).
constexpr int kXRegChunks = 4;

// kBatched: a.n input rows from global memory, MMA column n multiplying row min(n, a.n - 1), and an
// epilogue per (row, input row); else one input, staged in shared memory (or its fused RMSNorm).
// kXRegs (not batched; chunks <= kXRegChunks * kWarps): each lane loads its input pieces of its
// warp's chunks from the staged input into registers once, instead of from shared memory for every
// tile (the same values, so the same outputs bit for bit).
// kDirectX (kXRegs; direct_input): each lane loads its pieces from in.x in global memory itself,
// without the staging and its barrier (the same values again); with kNorm (in.sumsq: direct_norm) it
// loads its norm weights before pdl_wait() and its hidden values after, and normalizes them itself with
// the sum of squares from in.sumsq (gemv_common.cuh's values; the sum added in another order).
// kDirectX without kXRegs (not kNorm; warp_staged_input): each warp stages only its own chunks' input
// pieces in shared memory, behind __syncwarp() instead of the block's barrier (the same values again).
// Plain epilogues of one input row without kNorm (o_proj, down_proj) with a.out.sumsq leave each
// tile's sum of squares there.
template <class F, bool kNorm, bool kSwiglu, int kWarps, bool kBatched = false, bool kXRegs = false, bool kDirectX = false>
__global__ void __launch_bounds__(32 * kWarps, kWarps < 16 ? 16 / kWarps : 1) quant_gemv_kernel(QuantGemvArgs a) {
  static_assert(!(kBatched && kNorm), "batched GEMVs read their input as given");
  static_assert(!(kBatched && kXRegs), "batched GEMVs read their input rows from global memory");
  static_assert(!kDirectX || kXRegs || (!kNorm && !kBatched), "a direct input: registers, or staged by each warp");
  constexpr int kTiles = kSwiglu ? 2 : 1;
  constexpr int kCols = kBatched ? 2 : 1, kOut = kBatched ? kMaxGemvRows : 1;  // columns per lane, outputs per row
  constexpr int kS = kStages<F, kTiles, kWarps>, kRound = kRoundBytes<F, kTiles>, kTileBytes = kRound / kTiles;
  // The table [F::kLutWords], the input [chunks * 64] bf16 (not batched), the rings [kWarps][kS][kRound].
  extern __shared__ uint4 smem[];
  __shared__ float partial[2][kTiles][kWarps][16][kOut];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);
  uint4* xstage = smem + kLutBytes<F> / 16;
  const QuantMatrixView& w = a.w;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t chunks = w.chunks;
  uint8_t* ring = reinterpret_cast<uint8_t*>(xstage) + (kBatched ? 0 : chunks * 128) + warp * kS * kRound;
  const int scale_bytes = F::scale_bytes(w);

  // The next round (tile, chunk) this warp fetches: the same order as the loops below consume them.
  int64_t ftile = blockIdx.x, fchunk = warp;
  auto fetch = [&](int stage) {  // weights only: safe before pdl_wait()
    if (fchunk < chunks && ftile < a.tiles) {
#pragma unroll
      for (int j = 0; j < kTiles; ++j) {
        const int64_t tile = ftile + j * a.up_tile0;
        uint8_t* dst = ring + stage * kRound + j * kTileBytes;
#pragma unroll
        for (int v = 0; v < F::kLaneBytes / 16; ++v)
          copy_async(mma::smem_addr(dst + v * 512 + lane * 16), lane_piece(w, tile, fchunk, lane, F::kLaneBytes, v), 16);
        if constexpr (F::kMaxScaleBytes > 0) {
          const uint32_t sd = mma::smem_addr(dst + F::kLaneBytes * kLanes + lane * F::kMaxScaleBytes);
          const uint8_t* sp = F::scale_ptr(w, tile, fchunk, lane / 4);
          copy_async(sd, sp, scale_bytes);
        }
      }
    }
    copy_commit();  // one group per round, empty or not: the waits below count rounds
    fchunk += kWarps;
    if (fchunk >= chunks) fchunk = warp, ftile += gridDim.x;
  };
#pragma unroll 1
  for (int k = 0; k < kS - 1; ++k) fetch(k);
  F::fill_lut(w, lut, threadIdx.x, blockDim.x);
  // The batched kernels prefetch for 8-bit codes only, which run single rows through them (linear_weights.h);
  // for 4-bit codes the prefetch would take their batched kernels past 64 registers (one block per SM).
  constexpr bool kPrefetch = !kBatched || F::kLaneBytes == 32;
  uint4 xr[kXRegs ? kXRegChunks : 1][2];  // kXRegs: the input pieces of chunks warp + i * kWarps
  if constexpr (kDirectX && kNorm) {  // their norm weights for now (written once at upload)
#pragma unroll
    for (int i = 0; i < kXRegChunks; ++i)
      if (warp + i * kWarps < chunks) load_x(reinterpret_cast<const uint4*>(a.in.norm_weight), warp + i * kWarps, lane, xr[i]);
  }
  if (kPrefetch && a.prefetch) {
    if constexpr (kNorm && !kDirectX) prefetch_norm_weight(a.in, w.cols);
    // Thread kTiles k + j: the row scales (int8) and biases of this block's k-th tile (j: its up tile).
    const int64_t t = blockIdx.x + int64_t(threadIdx.x / kTiles) * gridDim.x;
    const int j = threadIdx.x % kTiles;
    if (t < a.tiles) {
      if constexpr (F::kRowScale) prefetch_l1(static_cast<const float*>(w.scales) + (t + j * a.up_tile0) * 16);
      if (a.out.bias) prefetch_l1(a.out.bias + j * a.rows + tile_rows(w, t).row0);
    }
  }
  pdl_wait();
  pdl_trigger();
  const uint4* x_lane = xstage;  // the lane's input row in natural order
  float input_scale = 1.f;      // LLM.int8(): the staged codes' scale
  if constexpr (kBatched) {
    const int64_t row = lane / 4 < a.n ? lane / 4 : a.n - 1;  // cols % 64 == 0: no padding to read
    x_lane = reinterpret_cast<const uint4*>(a.in.x + row * w.cols);
    if constexpr (F::kLutWords > 0) __syncthreads();  // the table
  } else if constexpr (kDirectX) {
    if constexpr (kNorm) {  // the hidden values' loads first, in flight while the warp adds the partials
      float4 h[kXRegChunks][2][2];
#pragma unroll
      for (int i = 0; i < kXRegChunks; ++i)
        if (warp + i * kWarps < chunks) load_hidden(a.in.hidden, warp + i * kWarps, lane, h[i]);
      const float inv = rsqrtf(sumsq_total(a.in.sumsq, a.in.sumsq_parts, lane) / float(w.cols) + a.in.eps);
#pragma unroll
      for (int i = 0; i < kXRegChunks; ++i)
        if (warp + i * kWarps < chunks) normalize_pieces(h[i], inv, xr[i]);
    } else if constexpr (kXRegs) {
      x_lane = reinterpret_cast<const uint4*>(a.in.x);  // cols == chunks * 64: no padding to read
    } else {  // chunk c's 8 pieces: xstage[8 c .. 8 c + 7], this warp's chunks warp, warp + kWarps, ...
      const int64_t pieces = (chunks - warp + kWarps - 1) / kWarps * 8;
      const auto at = [&](int64_t k) { return (warp + k / 8 * kWarps) * 8 + k % 8; };
      for_each_strided_x4(reinterpret_cast<const uint4*>(a.in.x), pieces, lane, 32, at,
                          [&](int64_t i, const uint4& v) { xstage[i] = v; });
      __syncwarp();
    }
    if constexpr (F::kLutWords > 0) __syncthreads();  // the table
  } else {
    bf16* xs = reinterpret_cast<bf16*>(xstage);
    stage_input<kNorm>(a.in, w.cols, chunks * 64, xs);  // ends with __syncthreads() (the table too)
    if constexpr (F::kRowScale) {
      if (w.int8_activations) input_scale = stage_int8_activations(xs, w.cols, w.outlier_threshold);
    }
  }
  if constexpr (kXRegs && !(kDirectX && kNorm)) {
#pragma unroll
    for (int i = 0; i < kXRegChunks; ++i)
      if (warp + i * kWarps < chunks) load_x(x_lane, warp + i * kWarps, lane, xr[i]);
  }
  int stage = 0;
  int64_t tile = blockIdx.x;
  for (int p = 0; tile < a.tiles; tile += gridDim.x, p ^= 1) {
    // The residual rows this tile's epilogue adds to (input row o: thread o).
    if (!kSwiglu && kPrefetch && a.prefetch && a.out.accumulate && threadIdx.x < (kBatched ? a.n : 1))
      prefetch_l1(a.out.y + threadIdx.x * a.rows + tile_rows(w, tile).row0);
    float acc[kTiles][2][kCols] = {};
    const auto step = [&](const uint4 (&x)[2]) {
      copy_wait<kS - 2>();  // this round's copies (this lane's own) have landed
      fetch(stage == 0 ? kS - 1 : stage - 1);  // the stage computed last round
      chunk_dots<F, kTiles, kCols>(w, ring + stage * kRound, x, lut, lane, acc);
      stage = stage + 1 == kS ? 0 : stage + 1;
    };
    if constexpr (kXRegs) {
#pragma unroll
      for (int i = 0; i < kXRegChunks; ++i)
        if (warp + i * kWarps < chunks) step(xr[i]);
    } else {
      for (int64_t c = warp; c < chunks; c += kWarps) {
        uint4 x[2];
        load_x(x_lane, c, lane, x);
        step(x);
      }
    }
    // Lane (g, t) holds rows g and g + 8 of MMA columns 2t .. 2t + kCols - 1 (one column: lane t = 0's).
    if (kBatched || lane % 4 == 0) {
#pragma unroll
      for (int j = 0; j < kTiles; ++j)
#pragma unroll
        for (int e = 0; e < kCols; ++e) {
          partial[p][j][warp][lane / 4][kBatched ? 2 * (lane % 4) + e : 0] = acc[j][0][e];
          partial[p][j][warp][lane / 4 + 8][kBatched ? 2 * (lane % 4) + e : 0] = acc[j][1][e];
        }
    }
    __syncthreads();  // partial[p] is written again two tiles later, after the next tile's barrier
    // Thread 16 o + i: output row i of input row o.
    float stored = 0.f;
    if (threadIdx.x < 16 * (kBatched ? a.n : 1)) {
      const int i = threadIdx.x % 16, o = threadIdx.x / 16;
      const TileRows rows = tile_rows(w, tile);
      if (i < rows.valid) {
        float dot[kTiles];
        tile_row_dots<F, kTiles, kWarps>(w, tile, a.up_tile0, i, input_scale,
                                         [&](int j, int k) { return partial[p][j][k][i][o]; }, dot);
        GemvEpilogue out = a.out;  // input row o's outputs
        if (out.y) out.y += o * a.rows;
        if (out.act) out.act += o * a.rows;
        stored = gemv_store<kSwiglu>(out, a.rows, rows.row0 + i, dot);
      }
    }
    if (!kSwiglu && !kNorm && a.out.sumsq && warp == 0) {  // threads 0 .. 15 hold the tile's stored values (one input row)
      float sq = __fmul_rn(stored, stored);  // not contracted into the adds (tests repeat the sum on the host)
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) sq += __shfl_xor_sync(0xffffffffu, sq, o);
      if (lane == 0) a.out.sumsq[tile] = sq;
    }
  }
  copy_wait<0>();  // nothing left in flight when the block exits
}

// Warps per block (each tile's chunks are split among them): 16, or CTXLAB_QGEMV_WARPS=8 (read once).
// On an H100 (bench/RESULTS.md, 2026-12-06 fourth session) 16 decoded the 8-layer Llama-2-7B shape
// faster than 8 with int8, q4_0 and nf4 (more loads in flight per SM: 4096-row matrices make only 256
// tiles, about two blocks per SM). Holding the 16-warp kernels to 64 registers (two blocks per SM for
// the SwiGLU kernels too) was no faster (fifth session).
int block_warps() {
  static const int warps = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_WARPS");
    return e && std::string(e) == "8" ? 8 : 16;
  }();
  return warps;
}

// Whether 16-warp GEMVs of up to kXRegChunks * 16 chunks hold their input in registers (kXRegs):
// yes, or CTXLAB_QGEMV_X_REGS=0 (read once) for same-process comparisons.
bool input_in_registers() {
  static const bool on = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_X_REGS");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

// An input given as is (no fused RMSNorm), whole chunks (no padding to read), 16-byte aligned, not
// LLM.int8()'s (which restages it).
bool plain_whole_chunks(const QuantGemvArgs& a) {
  return !a.in.hidden && a.w.cols == a.w.chunks * 64 && !a.w.int8_activations &&
         reinterpret_cast<uintptr_t>(a.in.x) % 16 == 0;
}

// Whether the single-row GEMVs that hold an input given as is (no fused RMSNorm) in registers load
// it there from global memory, each lane its own pieces, instead of staging it in shared memory
// behind a barrier first (the same values, so the same outputs bit for bit), where the input is whole
// chunks, 16-byte aligned and not LLM.int8()'s (which restages it). An experiment, off unless
// CTXLAB_QGEMV_DIRECT_X=1 (read once): written in the twenty-fourth session, not yet run on a GPU
// (bench/gpu/run_session24_direct_x.sh).
bool direct_input(const QuantGemvArgs& a) {
  static const bool on = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_DIRECT_X");
    return e && std::string(e) == "1";
  }();
  return on && plain_whole_chunks(a);
}

// Whether the single-row GEMVs that stage an input given as is (too long for registers: down_proj
// with 4-bit codes) stage only each warp's own chunks, behind __syncwarp() instead of the block's
// barrier, where the input is whole chunks, 16-byte aligned and not LLM.int8()'s (the same values, so
// the same outputs bit for bit). An experiment, off unless CTXLAB_QGEMV_WARP_STAGE=1 (read once):
// written in the twenty-fifth session, not yet run on a GPU (bench/gpu/run_session25_norm_partials.sh).
bool warp_staged_input(const QuantGemvArgs& a) {
  static const bool on = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_WARP_STAGE");
    return e && std::string(e) == "1";
  }();
  return on && plain_whole_chunks(a);
}

}  // namespace

bool quant_gemv_input_in_registers(const QuantMatrixView& w) {
  return block_warps() == 16 && w.chunks <= kXRegChunks * 16 && input_in_registers();
}

bool quant_gemv_direct_norm(const QuantMatrixView& w, const GemvInput& in) {
  return in.hidden && in.sumsq && quant_gemv_input_in_registers(w) && w.cols == w.chunks * 64 &&
         !w.int8_activations && reinterpret_cast<uintptr_t>(in.hidden) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(in.norm_weight) % 16 == 0;
}

int64_t quant_gemv_sumsq_parts(const QuantMatrixView& w) { return w.tiles; }

namespace {

template <bool kSwiglu, int kWarps>
void launch_quant_warps(const QuantGemvArgs& a, cudaStream_t stream) {
  dispatch_format(a.w.format, [&]<class F>() {
    const size_t smem = gemv_smem<F, kSwiglu ? 2 : 1, kWarps, false>(a.w.chunks);
    auto pick = [&](auto kernel) { launch_one_wave(kernel, a.tiles, smem, stream, a, kWarps); };
    if constexpr (kWarps == 16) {
      if (quant_gemv_input_in_registers(a.w)) {
        if (quant_gemv_direct_norm(a.w, a.in)) return pick(quant_gemv_kernel<F, true, kSwiglu, kWarps, false, true, true>);
        if constexpr (!kSwiglu) {  // the engine's SwiGLU GEMVs take the fused RMSNorm
          if (direct_input(a)) return pick(quant_gemv_kernel<F, false, false, kWarps, false, true, true>);
        }
        return a.in.hidden ? pick(quant_gemv_kernel<F, true, kSwiglu, kWarps, false, true>)
                           : pick(quant_gemv_kernel<F, false, kSwiglu, kWarps, false, true>);
      }
      if constexpr (!kSwiglu) {
        if (warp_staged_input(a)) return pick(quant_gemv_kernel<F, false, false, kWarps, false, false, true>);
      }
    }
    a.in.hidden ? pick(quant_gemv_kernel<F, true, kSwiglu, kWarps>) : pick(quant_gemv_kernel<F, false, kSwiglu, kWarps>);
  });
}

template <bool kSwiglu>
void launch_quant_variant(const QuantGemvArgs& a, cudaStream_t stream) {
  CTX_CHECK(a.in.hidden ? a.in.norm_weight != nullptr : a.in.x != nullptr, "GEMV input");
  block_warps() == 16 ? launch_quant_warps<kSwiglu, 16>(a, stream) : launch_quant_warps<kSwiglu, 8>(a, stream);
}

// Batched: 16 warps, the input rows read from global memory.
template <bool kSwiglu>
void launch_quant_rows(const QuantGemvArgs& a, cudaStream_t stream) {
  CTX_CHECK(a.in.x && !a.in.hidden && quant_gemv_rows_supported(a.w, a.n), "batched GEMV of ", a.n, " rows over [",
            a.w.rows, ", ", a.w.cols, "] (int8_activations ", a.w.int8_activations, ")");
  dispatch_format(a.w.format, [&]<class F>() {
    const size_t smem = gemv_smem<F, kSwiglu ? 2 : 1, 16, true>(a.w.chunks);
    launch_one_wave(quant_gemv_kernel<F, false, kSwiglu, 16, true>, a.tiles, smem, stream, a, 16);
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

// The arguments of a GEMV of n input rows (gemv_outputs: plain, or SwiGLU when act is set).
static QuantGemvArgs gemv_args(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, float alpha,
                               bool accumulate, float* y, bf16* act, int64_t n, float* sumsq = nullptr) {
  GemvOutputs o = gemv_outputs(w, bias, alpha, accumulate, y, act);
  CTX_CHECK(!sumsq || (n == 1 && !act && !in.hidden), "GEMV sums of squares: one input row given as is, plain outputs");
  o.out.sumsq = sumsq;
  return QuantGemvArgs{w, in, o.tiles, o.up_tile0, o.rows, o.out, n, gemv_prefetch()};
}

void launch_quant_gemv(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, float alpha, bool accumulate,
                       float* y, cudaStream_t stream, float* sumsq) {
  launch_quant_variant<false>(gemv_args(w, in, bias, alpha, accumulate, y, nullptr, 1, sumsq), stream);
}

void launch_quant_gemv_swiglu(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, bf16* act,
                              cudaStream_t stream) {
  launch_quant_variant<true>(gemv_args(w, in, bias, 1.f, false, nullptr, act, 1), stream);
}

bool quant_gemv_rows_supported(const QuantMatrixView& w, int64_t n) {
  return n >= 1 && n <= kMaxGemvRows && w.cols % kQuantChunkCols == 0 && !w.int8_activations;
}

void launch_quant_gemv_rows(const QuantMatrixView& w, const bf16* x, int64_t n, const bf16* bias, float alpha,
                            bool accumulate, float* y, cudaStream_t stream, float* sumsq) {
  launch_quant_rows<false>(gemv_args(w, GemvInput{x}, bias, alpha, accumulate, y, nullptr, n, sumsq), stream);
}

void launch_quant_gemv_swiglu_rows(const QuantMatrixView& w, const bf16* x, int64_t n, const bf16* bias, bf16* act,
                                   cudaStream_t stream) {
  launch_quant_rows<true>(gemv_args(w, GemvInput{x}, bias, 1.f, false, nullptr, act, n), stream);
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
