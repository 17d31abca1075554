// Consecutive decode GEMVs in one persistent kernel (quant_kernels.h launch_quant_gemv_chain).
//
// One wave of blocks of 16 warps, as the one-matrix kernel (quant_gemv_kernels.cu), computes stage 0,
// meets at a grid-wide barrier, computes stage 1, and so on. Within a stage a block takes tiles
// blockIdx.x, + gridDim.x, ... and its warps split each tile's 64-column chunks (warp w: chunks w, w +
// 16, ...); a SwiGLU stage computes the gate tile, then its up tile, and pairs them in the epilogue.
// Each warp's ring of cp.async stages is fed in exactly the order the warp consumes rounds, across
// tiles and across stages: the first rounds of stage s + 1 are copied while the warp finishes stage s
// and while the block waits at the barrier, so the weight stream keeps going where separate kernels
// each start theirs from nothing (their ramp-up and tail cost about 2.7 us per launch on an H100,
// bench/RESULTS.md). Per tile the arithmetic is the one-matrix kernel's (chunk_dots, the warps' sums in
// the same order, the same epilogue), so each stage's outputs are bit for bit those of its own launch.
//
// The grid-wide barrier (generation_barrier or counting_barrier below) needs every block resident at
// once: one wave, sized by the occupancy of this kernel (the blocks of the kernel before it leave as
// it ends; the kernel after it launches only once every block here has started, pdl.cuh).
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/base/error.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/gemv_common.cuh"
#include "core/cuda/kernels/pdl.cuh"
#include "core/cuda/kernels/quant_formats.cuh"
#include "core/cuda/kernels/quant_gemv_common.cuh"
#include "core/cuda/kernels/quant_kernels.h"

namespace ctx::cuda {

namespace {

using namespace quant_device;
using namespace qgemv;

constexpr int kChainWarps = 16;
constexpr int kMinChainChunks = kChainWarps;  // every warp has a chunk in every tile

// A stage as the kernel runs it.
struct ChainStage {
  QuantMatrixView w;
  GemvInput in;
  int64_t tiles;     // output tiles (SwiGLU: the gate tiles)
  int64_t up_tile0;  // SwiGLU: gate tile T pairs with up tile up_tile0 + T
  int64_t rows;      // outputs (SwiGLU: ff)
  GemvEpilogue out;  // out.act set: SwiGLU
};
struct ChainArgs {
  ChainStage stage[kMaxGemvChain];
  int count;
  int64_t max_chunks;  // the staged input's room
  unsigned* barrier;
  bool counting;  // counting_barrier, else generation_barrier
};

__device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Every block's writes before the call are visible to every block after it. Whole grid.
// Generation barrier: the last block to arrive resets the count and bumps the generation
// barrier[1], which the others wait on.
__device__ inline void generation_barrier(unsigned* barrier) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned generation = load_acquire(barrier + 1);  // cannot move on before this block arrives
    __threadfence();
    if (atomicAdd(barrier, 1u) == gridDim.x - 1) {
      atomicExch(barrier, 0u);
      __threadfence();
      atomicAdd(barrier + 1, 1u);
    } else {
      while (load_acquire(barrier + 1) == generation) {
      }
    }
    __threadfence();
  }
  __syncthreads();
}
// Counting barrier: barrier[0] counts every arrival of this launch; the k-th barrier (k >= 1) waits
// for k * gridDim.x of them (one fewer round trip through L2 than the generation barrier). The last
// block to leave the kernel zeroes both words (counting_exit).
__device__ inline void counting_barrier(unsigned* barrier, unsigned k) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(barrier, 1u);
    while (load_acquire(barrier) < k * gridDim.x) {
    }
    __threadfence();
  }
  __syncthreads();
}
__device__ inline void counting_exit(unsigned* barrier) {
  if (threadIdx.x == 0 && atomicAdd(barrier + 1, 1u) == gridDim.x - 1) {  // every block is past every barrier
    barrier[0] = 0u;
    barrier[1] = 0u;
  }
}

// Ring stages per warp for about kRingKiB of ring per block (3 to 12; 144 is held to 128 KiB where the
// format's table is 64 KiB, nf4/fp4 with codes=bfloat16). 48 KiB: two blocks per SM (64 registers)
// unless the table is that large; 96 and 144 KiB: one block per SM, with two and three times the
// copies in flight per warp, so that more of the next stage lands while the grid waits.
template <class F, int kRingKiB>
constexpr int kRingBytes = (kLutBytes<F> >= 32768 ? std::min(kRingKiB, 128) : kRingKiB) * 1024;
template <class F, int kRingKiB>
constexpr int kChainStages = std::max(3, std::min(12, kRingBytes<F, kRingKiB> / (kChainWarps * kRoundBytes<F, 1>)));
template <class F, int kRingKiB>
constexpr int kChainMinBlocks = kRingKiB <= 48 && kLutBytes<F> < 32768 ? 2 : 1;
template <class F, int kRingKiB>
constexpr size_t chain_smem(int64_t max_chunks) {
  return kLutBytes<F> + size_t(max_chunks) * 128 + size_t(kChainWarps) * kChainStages<F, kRingKiB> * kRoundBytes<F, 1>;
}

template <class F, int kRingKiB>
__global__ void __launch_bounds__(32 * kChainWarps, kChainMinBlocks<F, kRingKiB>)
    quant_gemv_chain_kernel(const __grid_constant__ ChainArgs a) {
  constexpr int kS = kChainStages<F, kRingKiB>, kRound = kRoundBytes<F, 1>;
  // The table [F::kLutWords], the input [max_chunks * 64] bf16, the rings [kChainWarps][kS][kRound].
  extern __shared__ uint4 smem[];
  __shared__ float partial[2][2][kChainWarps][16];
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);
  uint4* xstage = smem + kLutBytes<F> / 16;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  uint8_t* ring = reinterpret_cast<uint8_t*>(xstage) + a.max_chunks * 128 + warp * kS * kRound;

  // The next round this warp copies: stage fs, tile ftile (its part fj: 0, or 1 for the up tile of a
  // SwiGLU stage), chunk fchunk; the loops below consume rounds in the same order.
  int fs = 0, fj = 0;
  int64_t ftile = blockIdx.x, fchunk = warp;
  const auto settle = [&] {  // past the stages this block has no tile of
    while (fs < a.count && ftile >= a.stage[fs].tiles) ++fs, ftile = blockIdx.x;
  };
  settle();
  auto fetch = [&](int slot) {  // weights only: safe before pdl_wait()
    if (fs < a.count) {
      const ChainStage& st = a.stage[fs];
      const QuantMatrixView& w = st.w;
      const int64_t tile = ftile + fj * st.up_tile0;
      uint8_t* dst = ring + slot * kRound;
#pragma unroll
      for (int v = 0; v < F::kLaneBytes / 16; ++v)
        copy_async(mma::smem_addr(dst + v * 512 + lane * 16), lane_piece(w, tile, fchunk, lane, F::kLaneBytes, v), 16);
      if constexpr (F::kMaxScaleBytes > 0) {
        const uint32_t sd = mma::smem_addr(dst + F::kLaneBytes * kLanes + lane * F::kMaxScaleBytes);
        copy_async(sd, F::scale_ptr(w, tile, fchunk, lane / 4), F::scale_bytes(w));
      }
      fchunk += kChainWarps;
      if (fchunk >= w.chunks) {
        fchunk = warp;
        if (++fj == (st.out.act ? 2 : 1)) fj = 0, ftile += gridDim.x, settle();
      }
    }
    copy_commit();  // one group per round, empty or not: the waits below count rounds
  };
#pragma unroll 1
  for (int k = 0; k < kS - 1; ++k) fetch(k);
  F::fill_lut(a.stage[0].w, lut, threadIdx.x, blockDim.x);  // every stage has the same table
  pdl_wait();
  pdl_trigger();
  int slot = 0, p = 0;
  for (int s = 0; s < a.count; ++s) {
    if (s > 0) a.counting ? counting_barrier(a.barrier, unsigned(s)) : generation_barrier(a.barrier);
    const ChainStage& st = a.stage[s];
    if (blockIdx.x >= st.tiles) continue;
    const QuantMatrixView& w = st.w;
    bf16* xs = reinterpret_cast<bf16*>(xstage);
    // Both end with __syncthreads() (the table too, at stage 0).
    st.in.hidden ? stage_input<true>(st.in, w.cols, w.chunks * 64, xs) : stage_input<false>(st.in, w.cols, w.chunks * 64, xs);
    const auto tiles = [&]<int kTiles>() {
      for (int64_t tile = blockIdx.x; tile < st.tiles; tile += gridDim.x, p ^= 1) {
        float acc[kTiles][1][2][1] = {};
#pragma unroll
        for (int j = 0; j < kTiles; ++j) {
          for (int64_t c = warp; c < w.chunks; c += kChainWarps) {
            uint4 x[2];
            load_x(xstage, c, lane, x);
            copy_wait<kS - 2>();  // this round's copies (this lane's own) have landed
            fetch(slot == 0 ? kS - 1 : slot - 1);  // the slot computed last round
            chunk_dots<F, 1, 1>(w, ring + slot * kRound, x, lut, lane, acc[j]);
            slot = slot + 1 == kS ? 0 : slot + 1;
          }
        }
        if (lane % 4 == 0) {
#pragma unroll
          for (int j = 0; j < kTiles; ++j) {
            partial[p][j][warp][lane / 4] = acc[j][0][0][0];
            partial[p][j][warp][lane / 4 + 8] = acc[j][0][1][0];
          }
        }
        __syncthreads();  // partial[p] is written again two tiles later, after the next tile's barrier
        if (threadIdx.x < 16) {
          const int i = threadIdx.x;
          const TileRows rows = tile_rows(w, tile);
          if (i < rows.valid) {
            float dot[kTiles];
            tile_row_dots<F, kTiles, kChainWarps>(w, tile, st.up_tile0, i, 1.f,
                                                  [&](int j, int k) { return partial[p][j][k][i]; }, dot);
            gemv_store<kTiles == 2>(st.out, st.rows, rows.row0 + i, dot);
          }
        }
      }
    };
    st.out.act ? tiles.template operator()<2>() : tiles.template operator()<1>();
  }
  copy_wait<0>();  // nothing left in flight when the block exits
  if (a.counting) counting_exit(a.barrier);
}

}  // namespace

bool quant_gemv_chain_supported(const QuantGemvStage* stages, int count) {
  if (count < 1 || count > kMaxGemvChain) return false;
  for (int s = 0; s < count; ++s) {
    const QuantMatrixView& w = stages[s].w;
    if (w.format != stages[0].w.format || std::memcmp(w.code_values, stages[0].w.code_values, sizeof w.code_values) != 0 ||
        w.int8_activations || w.chunks < kMinChainChunks)
      return false;
    if (stages[s].act && !swiglu_stack_valid(w)) return false;
  }
  return true;
}

void launch_quant_gemv_chain(const QuantGemvStage* stages, int count, unsigned* barrier, cudaStream_t stream,
                             int ring_kib, int barrier_kind) {
  CTX_CHECK(barrier && quant_gemv_chain_supported(stages, count), "GEMV chain of ", count, " stages");
  static const int default_ring = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_CHAIN_RING");
    return e ? std::atoi(e) : 48;
  }();
  static const int default_barrier = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_CHAIN_BARRIER");
    return e && std::string(e) == "generation" ? 1 : 2;
  }();
  if (ring_kib == 0) ring_kib = default_ring;
  if (barrier_kind == 0) barrier_kind = default_barrier;
  CTX_CHECK(barrier_kind == 1 || barrier_kind == 2, "GEMV chain barrier kind ", barrier_kind);
  CTX_CHECK(ring_kib == 48 || ring_kib == 96 || ring_kib == 144, "GEMV chain ring of ", ring_kib, " KiB (48, 96 or 144)");
  ChainArgs a{};
  a.count = count, a.barrier = barrier, a.counting = barrier_kind == 2;
  int64_t max_tiles = 0;
  for (int s = 0; s < count; ++s) {
    const QuantGemvStage& in = stages[s];
    ChainStage& st = a.stage[s];
    st.w = in.w, st.in = in.in;
    CTX_CHECK(in.in.hidden ? in.in.norm_weight != nullptr : in.in.x != nullptr, "GEMV chain stage ", s, " input");
    const GemvOutputs o = gemv_outputs(in.w, in.bias, in.alpha, in.accumulate, in.y, in.act);
    st.tiles = o.tiles, st.up_tile0 = o.up_tile0, st.rows = o.rows, st.out = o.out;
    a.max_chunks = std::max(a.max_chunks, in.w.chunks);
    max_tiles = std::max(max_tiles, st.tiles);
  }
  dispatch_format(stages[0].w.format, [&]<class F>() {
    const auto launch = [&](auto kernel, size_t smem) { launch_one_wave(kernel, max_tiles, smem, stream, a, kChainWarps); };
    if (ring_kib == 144) {
      launch(quant_gemv_chain_kernel<F, 144>, chain_smem<F, 144>(a.max_chunks));
    } else if (ring_kib == 96) {
      launch(quant_gemv_chain_kernel<F, 96>, chain_smem<F, 96>(a.max_chunks));
    } else {
      launch(quant_gemv_chain_kernel<F, 48>, chain_smem<F, 48>(a.max_chunks));
    }
  });
}

}  // namespace ctx::cuda
