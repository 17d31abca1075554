// Tensor-core prefill attention, FlashAttention-2 style (flash_attention.h has the contract).
//
// One block = 4 warps = kRows query rows of one head; warp w owns rows (w * kMTiles + mt) * 16 ..
// + 15 for mt < kMTiles, thread lane of it rows lane / 4 and lane / 4 + 8 of each (the mma C
// layout, mma_sm80.cuh). Per 64-key tile, from the diagonal tile down to the first tile any row
// sees (FA2's order: the masked tiles come first):
//   wait K[t]; barrier; start V[t] (cp.async)  |  S = Q K[t]^T  |  mask if the tile is cut
//   wait V[t]; barrier; start K[t-1]           |  online softmax of S, rescale O  |  O += P V[t]
// so each load runs under the other half's math; one K and one V buffer suffice (the barriers
// order the reuse). Shared rows are XOR-swizzled in 16-byte chunks (chunk ^ row % 8), so that the
// 8 row addresses of every ldmatrix phase fall in distinct banks.
// Rows >= n and keys past the block's last position are zero-filled (never garbage: V rows enter
// P.V even where P is 0); masked scores are -inf, and a row whose keys so far are all masked keeps
// max -inf with the exponent base 0, so nothing is inf - inf.
#include <cfloat>
#include <climits>
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/flash_attention.h"
#include "core/cuda/kernels/mma_sm80.cuh"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {

namespace {

constexpr int kThreads = 128;  // 4 warps
constexpr int kKeys = 64;      // keys per tile

// Mask policies (FlashInfer-style functors): which keys query position q sees, and which tiles
// need the element-wise test. Positions are int (the cache capacity is < 2^31).
struct CausalMask {
  // The first key any row of positions [p_lo, p_hi] sees.
  __device__ int first_key(int /*p_lo*/) const { return 0; }
  // Whether some row of [p_lo, p_hi] does not see some key of [k0, k1).
  __device__ bool cuts(int /*k0*/, int k1, int p_lo, int /*p_hi*/) const { return k1 - 1 > p_lo; }
  __device__ bool visible(int q, int k) const { return k <= q; }
};

struct SlidingWindowMask {
  int window;  // >= 1: keys q - window + 1 .. q
  __device__ int first_key(int p_lo) const { return max(0, p_lo - window + 1); }
  __device__ bool cuts(int k0, int k1, int p_lo, int p_hi) const { return k1 - 1 > p_lo || k0 < p_hi - window + 1; }
  __device__ bool visible(int q, int k) const { return k <= q && k > q - window; }
};

struct FlashParams {
  const bf16 *q, *k, *v;
  bf16* out;
  const int32_t* pos0;
  int n, heads, group;  // group: query heads per KV head
  int64_t capacity;
  float scale_log2;     // softmax scale * log2(e)
};

// Element offset of 16-byte chunk c of row r in a swizzled [rows][kHd] bf16 tile.
template <int kHd>
__device__ __forceinline__ int swizzled(int r, int c) {
  return r * kHd + ((c ^ (r & 7)) << 3);
}

// Starts the copy of rows [0, kTileRows) of a [.., stride] bf16 matrix at g into a swizzled tile;
// rows >= valid are zero-filled (and not read).
// Physical chunk of logical chunk 2i + hi (hi in {0, 1}) in a row whose swizzle key is l7, given
// x = hi ^ l7: the high bits of 2i are a compile-time offset, so only (2i & 7) ^ x (4 values) lives
// in registers across the unrolled loops.
__device__ __forceinline__ int pair_chunk(int i, int x) { return ((2 * i) & ~7) | (((2 * i) & 7) ^ x); }

template <int kTileRows, int kHd>
__device__ __forceinline__ void load_tile(bf16* s, const bf16* g, int64_t stride, int valid, int tid) {
  constexpr int kChunks = kHd / 8;
  static_assert(kTileRows * kChunks % kThreads == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < kTileRows * kChunks / kThreads; ++i) {
    const int idx = tid + i * kThreads;
    const int r = idx / kChunks, c = idx % kChunks;
    const bool ok = r < valid;
    mma::cp_async_16(mma::smem_addr(s + swizzled<kHd>(r, c)), g + (ok ? int64_t(r) * stride + c * 8 : 0), ok ? 16 : 0);
  }
}

template <int kHd, int kMTiles>
constexpr int smem_bytes() {
  return (4 * 16 * kMTiles + 2 * kKeys) * kHd * 2;
}

// kMTiles = 1: Q fragments stay in registers; 2: they are re-read from shared memory per tile
// (registers go to the doubled S and O), and every K/V fragment feeds two mma.
template <int kHd, int kMTiles, class Mask>
__global__ void __launch_bounds__(kThreads, kMTiles == 1 ? 2 : 1) flash_prefill_kernel(FlashParams p, Mask mask) {
  constexpr int kRows = 4 * 16 * kMTiles;
  constexpr int kKSteps = kHd / 16;   // k16 steps of Q.K^T
  constexpr int kDTiles = kHd / 8;    // n8 tiles of O
  constexpr int kNTiles = kKeys / 8;  // n8 tiles of S
  constexpr bool kQInRegs = kMTiles == 1;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + kRows * kHd;
  bf16* sV = sK + kKeys * kHd;

  pdl_wait();
  pdl_trigger();
  const int h = blockIdx.x;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kRows;  // the longest rows first
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int pos0 = *p.pos0;
  const int rows_valid = min(kRows, p.n - m0);
  const int p_lo = pos0 + m0, p_hi = pos0 + m0 + rows_valid - 1;
  const int first_tile = mask.first_key(p_lo) / kKeys, last_tile = p_hi / kKeys;
  const int64_t q_stride = int64_t(p.heads) * kHd;
  const int64_t kv_offset = int64_t(h / p.group) * p.capacity * kHd;
  const bf16* k_head = p.k + kv_offset;
  const bf16* v_head = p.v + kv_offset;

  load_tile<kRows, kHd>(sQ, p.q + int64_t(m0) * q_stride + int64_t(h) * kHd, q_stride, rows_valid, tid);
  load_tile<kKeys, kHd>(sK, k_head + int64_t(last_tile) * kKeys * kHd, kHd, p_hi - last_tile * kKeys + 1, tid);
  mma::cp_async_commit();

  // ldmatrix lane addressing. Every tile row used is 8-aligned + (lane & 7), so the swizzle's row & 7
  // is lane & 7 and the physical chunk of logical chunk 2i + hi is (2i) ^ (hi ^ (lane & 7)).
  const int l7 = lane & 7;
  const int warp_row = warp * kMTiles * 16;
  const int q_row = warp_row + (lane & 15), q_x = (lane >> 4) ^ l7;         // A: rows 0-15, chunk +0/+1
  const int k_row = l7 + ((lane >> 4) << 3), k_x = ((lane >> 3) & 1) ^ l7;  // B: keys 0-15, chunk +0/+1
  const int v_row = l7 + (((lane >> 3) & 1) << 3), v_x = (lane >> 4) ^ l7;  // B^T: keys 0-15, chunk +0/+1
  const uint32_t sQ_a = mma::smem_addr(sQ), sK_a = mma::smem_addr(sK), sV_a = mma::smem_addr(sV);
  auto q_frag = [&](uint32_t (&a)[4], int mt, int kk) {
    mma::ldmatrix_x4(a, sQ_a + ((q_row + mt * 16) * kHd + (pair_chunk(kk, q_x) << 3)) * 2);
  };

  float o[kMTiles][kDTiles][4];
  float row_max[kMTiles][2], row_sum[kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int d = 0; d < kDTiles; ++d) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.f;
    row_max[mt][0] = row_max[mt][1] = -INFINITY;
    row_sum[mt][0] = row_sum[mt][1] = 0.f;
  }
  uint32_t qf[kQInRegs ? kKSteps : 1][4];

  for (int tile = last_tile; tile >= first_tile; --tile) {
    const int k0 = tile * kKeys;
    mma::cp_async_wait<0>();
    __syncthreads();  // K[tile] (and Q) landed; every warp is done with V[tile + 1]
    load_tile<kKeys, kHd>(sV, v_head + int64_t(k0) * kHd, kHd, p_hi - k0 + 1, tid);
    mma::cp_async_commit();
    if constexpr (kQInRegs) {
      if (tile == last_tile)
#pragma unroll
        for (int kk = 0; kk < kKSteps; ++kk) q_frag(qf[kk], 0, kk);
    }

    // S = Q K^T
    float s[kMTiles][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int j = 0; j < kNTiles; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        if constexpr (kQInRegs) {
#pragma unroll
          for (int i = 0; i < 4; ++i) a[mt][i] = qf[kk][i];
        } else {
          q_frag(a[mt], mt, kk);
        }
      }
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {
        uint32_t b[4];
        mma::ldmatrix_x4(b, sK_a + ((16 * np + k_row) * kHd + (pair_chunk(kk, k_x) << 3)) * 2);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma::mma_bf16_16816(s[mt][2 * np], a[mt], b[0], b[1]);
          mma::mma_bf16_16816(s[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }
    if (mask.cuts(k0, k0 + kKeys, p_lo, p_hi)) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int j = 0; j < kNTiles; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int q_pos = p_lo + warp_row + mt * 16 + (lane >> 2) + (e >> 1) * 8;
            const int key = k0 + j * 8 + (lane & 3) * 2 + (e & 1);
            if (!mask.visible(q_pos, key)) s[mt][j][e] = -INFINITY;
          }
    }

    mma::cp_async_wait<0>();
    __syncthreads();  // V[tile] landed; every warp is done with K[tile]
    if (tile > first_tile) {
      load_tile<kKeys, kHd>(sK, k_head + int64_t(k0 - kKeys) * kHd, kHd, kKeys, tid);
      mma::cp_async_commit();
    }

    // Online softmax: row i of the thread's pair (e = 2i, 2i + 1); the 4 threads of a quad share rows.
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        float mx = row_max[mt][i];
#pragma unroll
        for (int j = 0; j < kNTiles; ++j) mx = fmaxf(mx, fmaxf(s[mt][j][2 * i], s[mt][j][2 * i + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float base = mx == -INFINITY ? 0.f : mx * p.scale_log2;
        const float correction = mma::exp2_approx(row_max[mt][i] * p.scale_log2 - base);  // 0 while max was -inf
        row_max[mt][i] = mx;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kNTiles; ++j)
#pragma unroll
          for (int e = 2 * i; e < 2 * i + 2; ++e) {
            s[mt][j][e] = mma::exp2_approx(fmaf(s[mt][j][e], p.scale_log2, -base));
            sum += s[mt][j][e];
          }
        row_sum[mt][i] = row_sum[mt][i] * correction + sum;
#pragma unroll
        for (int d = 0; d < kDTiles; ++d) o[mt][d][2 * i] *= correction, o[mt][d][2 * i + 1] *= correction;
      }

    // O += P V: the S accumulators of keys 16kk .. 16kk + 15 are P's A fragment.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        a[mt][0] = mma::pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        a[mt][1] = mma::pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        a[mt][2] = mma::pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        a[mt][3] = mma::pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kHd / 16; ++dp) {
        uint32_t b[4];
        mma::ldmatrix_x4_trans(b, sV_a + ((16 * kk + v_row) * kHd + (pair_chunk(dp, v_x) << 3)) * 2);
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          mma::mma_bf16_16816(o[mt][2 * dp], a[mt], b[0], b[1]);
          mma::mma_bf16_16816(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
        }
      }
    }
  }

  // Normalise by the row sums (summed over the quad) and store bf16 pairs.
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float l = row_sum[mt][i];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const int row = m0 + warp_row + mt * 16 + (lane >> 2) + i * 8;
      if (row >= p.n) continue;
      bf16* dst = p.out + int64_t(row) * q_stride + int64_t(h) * kHd + (lane & 3) * 2;
#pragma unroll
      for (int d = 0; d < kDTiles; ++d)
        *reinterpret_cast<uint32_t*>(dst + d * 8) = mma::pack_bf16(o[mt][d][2 * i] * inv, o[mt][d][2 * i + 1] * inv);
    }
}

template <int kHd, int kMTiles, class Mask>
void launch_config(const FlashParams& fp, const Mask& mask, int n, cudaStream_t stream) {
  constexpr int kSmem = smem_bytes<kHd, kMTiles>();
  static const bool attribute_set = [] {  // once per instantiation (per process: one device)
    CTX_CUDA_CHECK(cudaFuncSetAttribute(flash_prefill_kernel<kHd, kMTiles, Mask>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)attribute_set;
  constexpr int kRows = 4 * 16 * kMTiles;
  const dim3 grid(unsigned(fp.heads), unsigned((n + kRows - 1) / kRows));
  launch_pdl(flash_prefill_kernel<kHd, kMTiles, Mask>, grid, dim3(kThreads), kSmem, stream, fp, mask);
}

template <class Mask>
void launch_mask(const FlashParams& fp, const Mask& mask, int64_t hd, int rows, cudaStream_t stream) {
  if (hd == 64) {
    rows == 64 ? launch_config<64, 1>(fp, mask, fp.n, stream) : launch_config<64, 2>(fp, mask, fp.n, stream);
  } else {
    rows == 64 ? launch_config<128, 1>(fp, mask, fp.n, stream) : launch_config<128, 2>(fp, mask, fp.n, stream);
  }
}

}  // namespace

bool flash_prefill_supported(const AttentionParams& p) {
  return (p.hd == 64 || p.hd == 128) && !p.block_table && !p.seq_lens && p.kv_heads > 0 && p.heads % p.kv_heads == 0 &&
         p.n >= 1 && p.n < INT_MAX && p.capacity < INT_MAX;
}

void launch_flash_prefill(const AttentionParams& p, cudaStream_t stream, int rows_per_block) {
  CTX_CHECK(flash_prefill_supported(p), "flash prefill: unsupported shape or layout");
  // Defaults: the variants without register spills (ptxas -v, sm_90a: hd 128 x 128 rows needs 255
  // registers and spills 80 bytes; the others 154-250 registers, none spilled).
  const int rows = rows_per_block > 0 ? rows_per_block : p.hd == 64 ? 128 : 64;
  CTX_CHECK(rows == 64 || rows == 128, "flash prefill: rows_per_block must be 64 or 128");
  FlashParams fp;
  fp.q = p.q, fp.k = p.k_cache, fp.v = p.v_cache, fp.out = p.out, fp.pos0 = p.pos0;
  fp.n = int(p.n), fp.heads = int(p.heads), fp.group = int(p.heads / p.kv_heads), fp.capacity = p.capacity;
  fp.scale_log2 = p.scale * 1.4426950408889634f;
  if (p.window > 0) {
    launch_mask(fp, SlidingWindowMask{int(p.window < INT_MAX ? p.window : INT_MAX)}, p.hd, rows, stream);
  } else {
    launch_mask(fp, CausalMask{}, p.hd, rows, stream);
  }
}

}  // namespace ctx::cuda
