// Pieces shared by the flash prefill kernels (internal to core/cuda/kernels; flash_attention.h has
// the contract): mask policies, the kernel parameters, the shared-memory tile layout and its
// cp.async loader (row by row through a row-address policy, kv_rows.cuh: ContiguousRows or
// PagedRows, so that a 64-key tile may span several pool blocks), and the per-thread steps on a
// 16-row slab of scores in the mma C layout (thread lane holds rows lane / 4 and lane / 4 + 8,
// columns 8j + 2(lane % 4) + {0, 1} in s[j][0..1] and s[j][2..3]), which both mma.sync m16n8k16
// and wgmma m64nNk16 (per warp) accumulators use.
#pragma once

#include <cuda_bf16.h>

#include <climits>
#include <cstdint>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/kv_rows.cuh"
#include "core/cuda/kernels/logits_transform.cuh"
#include "core/cuda/kernels/mma_sm80.cuh"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda::flash {

using bf16 = __nv_bfloat16;

constexpr int kKeys = 64;  // keys per tile

// Mask policies (FlashInfer-style functors): which keys query position q sees, and which tiles
// need the element-wise test. Positions are int (the cache capacity is < 2^31).
// Every policy: first_key / last_key bound the keys any row of positions [p_lo, p_hi] sees (as the
// intervals' ends never decrease with the row, the first row's first and the last row's last);
// bound(kv_last) is the policy with the last cached key known (read on the device).
struct CausalMask {
  __device__ CausalMask bound(int /*kv_last*/) const { return *this; }
  __device__ int first_key(int /*p_lo*/) const { return 0; }
  __device__ int last_key(int p_hi) const { return p_hi; }
  // Whether some row of [p_lo, p_hi] does not see some key of [k0, k1).
  __device__ bool cuts(int /*k0*/, int k1, int p_lo, int /*p_hi*/) const { return k1 - 1 > p_lo; }
  __device__ bool visible(int q, int k) const { return k <= q; }
};

struct SlidingWindowMask {
  int window;  // >= 1: keys q - window + 1 .. q
  __device__ SlidingWindowMask bound(int /*kv_last*/) const { return *this; }
  __device__ int first_key(int p_lo) const { return max(0, p_lo - window + 1); }
  __device__ int last_key(int p_hi) const { return p_hi; }
  __device__ bool cuts(int k0, int k1, int p_lo, int p_hi) const { return k1 - 1 > p_lo || k0 < p_hi - window + 1; }
  __device__ bool visible(int q, int k) const { return k <= q && k > q - window; }
};

// A flex mask (core/cuda/flex_mask.h): row q sees [first(q), last(q)] of the keys cached.
struct FlexIntervalMask {
  FlexMask m;
  int kv_last = 0;
  __device__ FlexIntervalMask bound(int last_cached) const {
    FlexIntervalMask b = *this;
    b.kv_last = last_cached;
    return b;
  }
  __device__ void range(int q, int& first, int& last) const {
    int64_t f, l;
    m.interval(q, f, l);
    first = int(f), last = int(l < kv_last ? l : kv_last);
  }
  __device__ int first_key(int p_lo) const {
    int f, l;
    range(p_lo, f, l);
    return f;
  }
  __device__ int last_key(int p_hi) const {
    int f, l;
    range(p_hi, f, l);
    return l;
  }
  // Every row of [p_lo, p_hi] sees all of [k0, k1) when the last row's first key and the first
  // row's last key enclose it.
  __device__ bool cuts(int k0, int k1, int p_lo, int p_hi) const {
    int f_hi, l_hi, f_lo, l_lo;
    range(p_hi, f_hi, l_hi), range(p_lo, f_lo, l_lo);
    return k0 < f_hi || k1 - 1 > l_lo;
  }
  __device__ bool visible(int q, int k) const {
    int f, l;
    range(q, f, l);
    return k >= f && k <= l;
  }
};

struct FlashParams {
  const bf16 *q, *k, *v;
  bf16* out;
  const int32_t* pos0;
  int n, heads, group;  // group: query heads per KV head
  int64_t capacity;
  int64_t kv_head_stride;  // elements from one KV head's rows to the next (contiguous: capacity * hd;
                           // paged: pool_blocks * block_size * hd)
  float scale_log2;     // softmax scale * log2(e)
  float scale;          // softmax scale (the score point's, with a score mod)
};

inline FlashParams flash_params(const AttentionParams& p) {
  FlashParams fp;
  fp.q = p.q, fp.k = p.k_cache, fp.v = p.v_cache, fp.out = p.out, fp.pos0 = p.pos0;
  fp.n = int(p.n), fp.heads = int(p.heads), fp.group = int(p.heads / p.kv_heads), fp.capacity = p.capacity;
  fp.kv_head_stride = (p.pool.paged() ? p.pool.head_rows() : p.capacity) * p.hd;
  fp.scale_log2 = p.scale * 1.4426950408889634f;
  fp.scale = p.scale;
  return fp;
}

// p's mask as a flex interval program: p.flex (plain causal when empty) and the model's window.
inline FlexIntervalMask flex_interval_mask(const AttentionParams& p) {
  FlexIntervalMask m{p.flex};
  if (m.m.empty()) m.m.ops[m.m.count++] = FlexMask::kCausal;
  if (p.window > 0) {  // the model's window anded in
    CTX_CHECK(m.m.count + 2 <= FlexMask::kMaxOps, "flex mask: too many operations");
    m.m.ops[m.m.count] = FlexMask::kKeyWindow, m.m.args[m.m.count++] = p.window;
    m.m.ops[m.m.count++] = FlexMask::kAnd;
  }
  return m;
}

// fn(mask) with the mask policy of p.
template <class Fn>
void with_mask(const AttentionParams& p, Fn&& fn) {
  if (!p.flex.empty()) {
    fn(flex_interval_mask(p));
  } else if (p.window > 0) {
    fn(SlidingWindowMask{int(p.window < INT_MAX ? p.window : INT_MAX)});
  } else {
    fn(CausalMask{});
  }
}

// fn(rows) with the row-address policy of p's K/V (kv_rows.cuh): PagedRows through p.pool
// (the sequence's row of it), else ContiguousRows.
template <class Fn>
void with_rows(const AttentionParams& p, Fn&& fn) {
  if (p.pool.paged())
    fn(p.pool.rows(0, p.hd));
  else
    fn(ContiguousRows{p.hd});
}

// fn(mask, logits, rows) with the mask, score-point and row-address policies of p
// (logits_transform.cuh, kv_rows.cuh). A score mod runs under the flex interval mask only, so that
// it adds one instantiation per kernel shape rather than one per mask policy, and over a contiguous
// cache only (flash_prefill_supported; as the split-KV kernel).
template <class Fn>
void with_policies(const AttentionParams& p, Fn&& fn) {
  if (p.score_mod.empty()) {
    with_rows(p, [&](auto rows) { with_mask(p, [&](auto mask) { fn(mask, PlainLogits{}, rows); }); });
  } else {
    CTX_CHECK(!p.pool.paged(), "flash prefill: score mods run over a contiguous cache only");
    fn(flex_interval_mask(p), ScoreModLogits{p.score_mod, p.heads}, ContiguousRows{p.hd});
  }
}

// The wgmma kernels (flash_attention_sm90.cu): rows_per_block 64 or 128 (one or two warpgroups).
void launch_flash_prefill_sm90(const AttentionParams& p, cudaStream_t stream, int rows_per_block);

// The TMA + warp-specialised wgmma kernel (flash_attention_sm90_tma.cu); needs
// flash_prefill_tma_supported(p); pingpong: FlashConfig::pingpong.
void launch_flash_prefill_sm90_tma(const AttentionParams& p, cudaStream_t stream, bool pingpong);

// The block's place in the problem: query rows [m0, m0 + rows_valid) at positions [p_lo, p_hi],
// key tiles first_tile .. last_tile, and the head's Q/K/V/out bases (k, v: its KV head's base, key
// j's row at rows(j) from it).
struct BlockWork {
  int m0, rows_valid, p_lo, p_hi, k_hi, first_tile, last_tile;  // k_hi: the last key any row sees
  int64_t q_stride;  // heads * hd
  const bf16 *q, *k, *v;
  bf16* out;
};

template <int kHd, class Mask>
__device__ __forceinline__ BlockWork block_work(const FlashParams& p, const Mask& mask, int rows_per_block) {
  BlockWork w;
  const int h = blockIdx.x;
  w.m0 = (gridDim.y - 1 - blockIdx.y) * rows_per_block;  // the longest rows first
  const int pos0 = *p.pos0;
  w.rows_valid = min(rows_per_block, p.n - w.m0);
  w.p_lo = pos0 + w.m0, w.p_hi = pos0 + w.m0 + w.rows_valid - 1;
  w.k_hi = mask.last_key(w.p_hi);
  w.first_tile = mask.first_key(w.p_lo) / kKeys, w.last_tile = w.k_hi / kKeys;
  w.q_stride = int64_t(p.heads) * kHd;
  w.q = p.q + int64_t(w.m0) * w.q_stride + int64_t(h) * kHd;
  w.out = p.out + int64_t(w.m0) * w.q_stride + int64_t(h) * kHd;
  const int64_t kv_offset = int64_t(h / p.group) * p.kv_head_stride;
  w.k = p.k + kv_offset, w.v = p.v + kv_offset;
  return w;
}

// Shared tile of kRows rows of kHd bf16 in the wgmma 128-byte-swizzle layout (K-major for Q and
// K, MN-major for V): column blocks of 64 elements ([kHd / 64][kRows][64]), each row of a block
// 128 bytes whose 16-byte chunk c sits at c ^ (row % 8). The 8 rows of every ldmatrix phase then
// hit distinct banks, and the tensor cores' own swizzle matches where tiles are 1024-byte aligned.
template <int kRows>
__device__ __forceinline__ int tile_offset(int r, int c) {  // element offset of chunk c (8 bf16) of row r
  return (c >> 3) * (kRows * 64) + r * 64 + (((c & 7) ^ (r & 7)) << 3);
}

// Physical place of logical chunk 2i + hi (hi in {0, 1}) of a row whose swizzle key is l7, given
// x = hi ^ l7 (in 0..7), as an element offset within the row's column blocks: the block and the
// high bits of 2i are compile-time, so only (2i & 6) ^ x lives in registers.
template <int kRows>
__device__ __forceinline__ int pair_chunk_offset(int i, int x) {
  return ((2 * i) >> 3) * (kRows * 64) + ((((2 * i) & 6) ^ x) << 3);
}

// Starts the copy (cp.async, one commit group left to the caller) of rows j0 .. j0 + kRows - 1 into
// a tile, row j (its kHd bf16) at g + rows(j): 16 bytes per copy, each row addressed on its own, so
// that the rows of a tile may lie anywhere (paged: one pool block per block_size keys). Rows
// j0 + r with r >= valid are zero-filled and neither read nor addressed (PagedRows would read a
// table entry past the sequence).
template <int kRows, int kHd, int kThreads, class Rows>
__device__ __forceinline__ void load_tile(bf16* s, const bf16* g, const Rows& rows, int64_t j0, int valid, int tid) {
  constexpr int kChunks = kHd / 8;
  static_assert(kRows * kChunks % kThreads == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < kRows * kChunks / kThreads; ++i) {
    const int idx = tid + i * kThreads;
    const int r = idx / kChunks, c = idx % kChunks;
    const bool ok = r < valid;
    mma::cp_async_16(mma::smem_addr(s + tile_offset<kRows>(r, c)), g + (ok ? rows(j0 + r) + c * 8 : 0), ok ? 16 : 0);
  }
}

// A block's start: its work, and the cp.async (one committed group) of its Q rows and its last K tile.
template <int kRows, int kHd, int kThreads, class Mask, class Rows>
__device__ __forceinline__ BlockWork start_block(const FlashParams& p, const Mask& mask, const Rows& rows, bf16* sQ,
                                                 bf16* sK, int tid) {
  const BlockWork w = block_work<kHd>(p, mask, kRows);
  load_tile<kRows, kHd, kThreads>(sQ, w.q, ContiguousRows{w.q_stride}, 0, w.rows_valid, tid);
  load_tile<kKeys, kHd, kThreads>(sK, w.k, rows, int64_t(w.last_tile) * kKeys, w.k_hi - w.last_tile * kKeys + 1, tid);
  mma::cp_async_commit();
  return w;
}

// Scores of keys the mask hides -> -inf; q_pos0: position of the slab's row 0.
template <int kNTiles, class Mask>
__device__ __forceinline__ void mask_slab(float (&s)[kNTiles][4], const Mask& mask, int q_pos0, int k0, int lane) {
#pragma unroll
  for (int j = 0; j < kNTiles; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (!mask.visible(q_pos0 + (lane >> 2) + (e >> 1) * 8, k0 + j * 8 + (lane & 3) * 2 + (e & 1)))
        s[j][e] = -INFINITY;
}

// The score point (logits_transform.cuh) on a slab of raw scores q.k, before mask_slab: s =
// logits(scale * s, head, q, k); q_pos0: position of the slab's row 0. softmax_slab then takes
// softmax_scale_log2() = log2(e). PlainLogits: nothing (the scale stays in the softmax's exponent).
template <int kNTiles, class Logits>
__device__ __forceinline__ void transform_slab(float (&s)[kNTiles][4], const Logits& logits, const FlashParams& p,
                                               int head, int q_pos0, int k0, int lane) {
  if constexpr (Logits::kActive) {
#pragma unroll
    for (int j = 0; j < kNTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[j][e] = logits(s[j][e] * p.scale, head, q_pos0 + (lane >> 2) + (e >> 1) * 8, k0 + j * 8 + (lane & 3) * 2 + (e & 1));
  }
}
template <class Logits>
__device__ __forceinline__ float softmax_scale_log2(const FlashParams& p) {
  return Logits::kActive ? 1.4426950408889634f : p.scale_log2;
}

// Online softmax over one tile of scores, the scores' half: updates the running max and
// (thread-partial) sum of the thread's two rows and turns s into the weights exp2(s * scale_log2 -
// max * scale_log2); correction[i] is what row i's output accumulators must then be scaled by
// (rescale_rows; apart so that a kernel can do it once an in-flight P.V product has finished). A row
// whose scores so far are all -inf keeps max -inf with exponent base 0, so nothing computes inf - inf.
template <int kNTiles>
__device__ __forceinline__ void softmax_scores(float (&s)[kNTiles][4], float (&row_max)[2], float (&row_sum)[2],
                                               float scale_log2, float (&correction)[2]) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {  // row i: elements 2i, 2i + 1; the 4 threads of a quad share it
    float mx = row_max[i];
#pragma unroll
    for (int j = 0; j < kNTiles; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * i], s[j][2 * i + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float base = mx == -INFINITY ? 0.f : mx * scale_log2;
    correction[i] = mma::exp2_approx(row_max[i] * scale_log2 - base);  // 0 while the max was -inf
    row_max[i] = mx;
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < kNTiles; ++j)
#pragma unroll
      for (int e = 2 * i; e < 2 * i + 2; ++e) {
        s[j][e] = mma::exp2_approx(fmaf(s[j][e], scale_log2, -base));
        sum += s[j][e];
      }
    row_sum[i] = row_sum[i] * correction[i] + sum;
  }
}

template <int kDTiles>
__device__ __forceinline__ void rescale_rows(float (&o)[kDTiles][4], const float (&correction)[2]) {
#pragma unroll
  for (int d = 0; d < kDTiles; ++d)
    o[d][0] *= correction[0], o[d][1] *= correction[0], o[d][2] *= correction[1], o[d][3] *= correction[1];
}

// Both halves: the scores become weights and the output accumulators are rescaled.
template <int kNTiles, int kDTiles>
__device__ __forceinline__ void softmax_slab(float (&s)[kNTiles][4], float (&o)[kDTiles][4], float (&row_max)[2],
                                             float (&row_sum)[2], float scale_log2) {
  float correction[2];
  softmax_scores(s, row_max, row_sum, scale_log2, correction);
  rescale_rows(o, correction);
}

// The A fragment (m16k16, bf16) of keys 16kk .. 16kk + 15 from the weights in s.
template <int kNTiles>
__device__ __forceinline__ void weights_fragment(const float (&s)[kNTiles][4], int kk, uint32_t (&a)[4]) {
  a[0] = mma::pack_bf16(s[2 * kk][0], s[2 * kk][1]);
  a[1] = mma::pack_bf16(s[2 * kk][2], s[2 * kk][3]);
  a[2] = mma::pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
  a[3] = mma::pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

// Divides the slab's rows by their sums (over the quad) and stores them as bf16 pairs; row0: the
// slab's first row within the block; rows >= rows_valid are not stored.
template <int kDTiles>
__device__ __forceinline__ void store_slab(const float (&o)[kDTiles][4], const float (&row_sum)[2], const BlockWork& w,
                                           int row0, int lane) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    float l = row_sum[i];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int row = row0 + (lane >> 2) + i * 8;
    if (row >= w.rows_valid) continue;
    bf16* dst = w.out + int64_t(row) * w.q_stride + (lane & 3) * 2;
#pragma unroll
    for (int d = 0; d < kDTiles; ++d)
      *reinterpret_cast<uint32_t*>(dst + d * 8) = mma::pack_bf16(o[d][2 * i] * inv, o[d][2 * i + 1] * inv);
  }
}

}  // namespace ctx::cuda::flash
