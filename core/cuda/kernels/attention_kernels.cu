// Causal attention over the bf16 KV cache, split-KV (kernels.h): one block per (query, head, chunk
// of keys) keeps an online max and sum (FlashAttention's rescaling) per warp and merges its four
// warps; with one chunk it writes the output, with several it writes (m, l, unnormalised o) and the
// chunk that finishes last merges them all (a counter per (query, head): no second launch).
// Lane i of a warp owns elements i, i + 32, ... of the head (kEpl of them), so any head_dim <= 256
// works and a key row is read with coalesced loads; a warp loads the K and V rows of several keys
// before using any of them, so that many loads are in flight (decode reads the cache at HBM speed
// only with enough of them).
// Head_dim 64/128 with several query heads per block (GQA) run on tensor cores instead
// (attention_mma.cuh): the CUDA-core pass is bound by instructions there, not by memory.
// Where key j of a sequence lives is a policy (ContiguousRows, PagedRows), so the same kernel reads
// the engine's contiguous cache and a paged pool through a block table (PagedAttention). A score
// mod (p.score_mod) is the Logits policy (logits_transform.cuh) applied at the score point; it is
// instantiated for the contiguous layout without prefetch only.
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/attention_mma.cuh"
#include "core/cuda/kernels/attention_pass.cuh"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/kivi_kernels.h"
#include "core/cuda/kernels/pdl.cuh"
#include "core/cuda/kernels/qkv_overlap.cuh"

namespace ctx::cuda {

namespace {

using namespace attention;

// AttentionParams::rope: the block's kG query rows rotated into q (shared memory), and, by the block
// whose chunk holds the query's position, the rotated key and the value written at that position's row
// (rows: ContiguousRows or PagedRows) of the KV head's k and v (read by this block's pass after the
// barrier; no other block reads that row). angle: null, or where the block's threads are a multiple of
// head_dim (so that every element a thread rotates is element threadIdx.x % hd of its head) the angle
// of that element at b.pos. kHd: head_dim when the kernel knows it (p.hd), so that the element and
// head of a thread's index take shifts instead of 64-bit divisions; 0: p.hd. The projections are read
// through L2 (__ldcg): with p.rope.overlap the GEMV may still be writing them, on other SMs, and each
// load waits until its element is written (load_written).
template <int kG, int kHd, class Rows>
__device__ void rope_into_block(const AttentionParams& p, const BlockKeys& b, const Rows& rows, const RopeAngle* angle,
                                bf16* q, bf16* k, bf16* v) {
  const int64_t hd = kHd > 0 ? kHd : p.hd;
  const float* src = p.rope.qkv;
  const bool overlap = p.rope.overlap != nullptr;
  const auto ld = [&](const float* e) { return overlap ? load_written(e) : __ldcg(e); };
  const auto rotate = [&](float x, float partner, const RopePair& r) {
    return angle ? rope_apply(x, partner, r, *angle) : rope_rotate(x, partner, r, b.pos, p.rope.inv_freq);
  };
  for (int64_t i = threadIdx.x; i < kG * hd; i += blockDim.x) {
    const int64_t e = i % hd;
    const float* row = src + (b.h0 + i / hd) * hd;
    const RopePair r = rope_pair(e, hd, p.rope.interleaved);
    q[i] = __float2bfloat16(rotate(round_bf16(ld(row + e)), round_bf16(ld(row + r.partner)), r));
  }
  if (b.holds_new_key()) {
    const float* k_src = src + p.heads * hd + b.kvh * hd;
    const float* v_src = k_src + p.kv_heads * hd;
    const int64_t row = rows(b.pos);
    for (int64_t e = threadIdx.x; e < hd; e += blockDim.x) {
      const RopePair r = rope_pair(e, hd, p.rope.interleaved);
      k[row + e] = __float2bfloat16(rotate(round_bf16(ld(k_src + e)), round_bf16(ld(k_src + r.partner)), r));
      v[row + e] = __float2bfloat16(ld(v_src + e));
    }
  }
  __syncthreads();
}

// p.rope.overlap (kernels.h), in place of pdl_wait(): thread 0 waits for the element of the block's
// rows that the GEMV writes last (its tiles go in row order): the new key's value row's last with the
// new key, else its last query row's. Whole block.
template <int kG>
__device__ void wait_for_block_rows(const AttentionParams& p, const BlockKeys& b) {
  if (threadIdx.x == 0) {
    const int64_t hd = p.hd;
    const int64_t row = b.holds_new_key() ? p.heads + p.kv_heads + b.kvh : b.h0 + kG - 1;
    load_written(p.rope.qkv + (row + 1) * hd - 1);
  }
  __syncthreads();
}

// p.rope.overlap, after rope_into_block: warp 0 counts the block among the readers of its kG query
// rows (every chunk that holds keys), warp 1 among those of its KV head's k and v rows (the chunks
// with the new key, one per kG query heads of the KV head); the last reader of each writes
// kQkvUnwritten back over them.
template <int kG>
__device__ void release_block_rows(const AttentionParams& p, const BlockKeys& b, int warp, int lane) {
  const int64_t hd = p.hd;
  float* qkv = const_cast<float*>(p.rope.qkv);  // the engine's qkv buffer (Rope::overlap)
  if (warp == 0 && last_reader(p.rope.overlap + b.h0, int(b.chunks), lane)) mark_unwritten(qkv + b.h0 * hd, kG * hd, lane);
  if (warp == 1 && b.holds_new_key() &&
      last_reader(p.rope.overlap + p.heads + b.kvh, int(p.heads / p.kv_heads / kG), lane)) {
    mark_unwritten(qkv + (p.heads + b.kvh) * hd, hd, lane);
    mark_unwritten(qkv + (p.heads + p.kv_heads + b.kvh) * hd, hd, lane);
  }
}

// Before pdl_wait() in a launch with RoPE fused in: the K and V pieces this lane loads in its warp's
// first two steps of the wide pass, keys before the new one (b.pos, written after the wait), into L1.
// The pass then loads them as usual (the same values), from L1 instead of DRAM.
template <int kHd, class Rows>
__device__ void prefetch_early_rows(const Rows& rows, const bf16* k, const bf16* v, const BlockKeys& b, int warp,
                                    int lane) {
  constexpr int kLanes = WideSoftmax<kHd, 1>::kLanes, kPerLoad = WideSoftmax<kHd, 1>::kPerLoad;
  constexpr int kStep = wide_bf16_step<kHd>();
  const int64_t end = b.end < b.pos ? b.end : b.pos;
  for (int s = 0; s < 2; ++s)
#pragma unroll
    for (int i = 0; i < kStep / kPerLoad; ++i) {
      const int64_t j = b.begin + (s * kWarps + warp) * kStep + i * kPerLoad + lane / kLanes;
      if (j < end && lane % 8 == 0) {  // one lane per 128-byte line
        const int64_t row = rows(j) + (lane % kLanes) * 8;
        prefetch_l1(k + row), prefetch_l1(v + row);
      }
    }
}

// kWide: head_dim == 32 * kEpl in {64, 128, 256} (WideSoftmax), else warp_keys_strided.
// kMma: head_dim 64 or 128 on tensor cores (attention_mma.cuh) instead of WideSoftmax.
// kPaged: K/V through p.pool (PagedRows), else contiguous. kG: query heads per block, all
// reading the same KV head (1 unless kWide); warp g < kG merges head g. logits: the score point
// (a score mod runs on the CUDA-core passes only: not with kMma).
// kCoherent (kMma): the tensor-core pass loads K/V through L2, so that a launch with RoPE fused in
// (p.rope) reads the key row it wrote.
template <int kEpl, bool kWide, bool kPaged, int kG, bool kPrefetch = false, bool kMma = false, class Logits = PlainLogits,
          bool kCoherent = false>
__global__ void attention_partial_kernel(AttentionParams p, Logits logits) {
  static_assert(!kCoherent || kMma, "the CUDA-core passes load K/V coherently already");
  static_assert(!kMma || !Logits::kActive, "the tensor-core pass has no score point");
  static_assert(kG == 1 || kWide, "grouped heads need the wide pass");
  static_assert(kG <= kWarps, "one merging warp per head");
  static_assert(!kMma || kWide, "the tensor-core pass is a wide layout");
  // With RoPE fused in (p.rope.qkv), the launch before (the qkv GEMV) writes only q and the new key's
  // row. The position and the older keys' rows were written two launches back or earlier (pdl.cuh's
  // ordering is transitive), so before pdl_wait() the block finds its keys and pulls the rows of each
  // warp's first two wide steps into L1 (prefetch_early_rows, the CUDA-core wide pass), during the GEMV's
  // tail.
  // With p.rope.overlap the block never waits for the GEMV's end (wait_for_block_rows), and lets the
  // next launch start at once.
  const bool early = p.rope.qkv != nullptr;
  if (!early) {
    pdl_wait(), pdl_trigger();
  } else if (p.rope.overlap) {
    pdl_trigger();
  }
  const BlockKeys b = block_keys<kG>(p, 1);
  if (b.slot >= b.chunks) return;  // no keys (min_chunk): the chunks that hold some merge without it
  const BlockLogits<Logits> score{logits, b.h0, b.pos};
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t hd = p.hd;
  __shared__ BlockShared<kEpl, kG> sh;
  const bf16* q_rows = p.q + (b.t * p.heads + b.h0) * hd;
  // Rows per KV head: the pool's blocks when paged, else the sequence's capacity.
  const int64_t head_rows = kPaged ? p.pool.head_rows() : p.capacity;
  const int64_t base = (kPaged ? 0 : b.seq * p.kv_heads * p.capacity * hd) + b.kvh * head_rows * hd;
  const bf16* k_base = p.k_cache + base;
  const bf16* v_base = p.v_cache + base;
  __shared__ __align__(16) bf16 q_rope[kG * 32 * kEpl];
  // RoPE fused in, head_dim == 32 * kEpl dividing the block's threads: the angle of this thread's
  // element, before the wait (it reads only the position and inv_freq, which no launch still running
  // writes), so that its load and cos/sin leave the path from the qkv GEMV's end to the pass.
  constexpr bool kAngleEarly = kWide && (32 * kWarps) % (32 * kEpl) == 0;
  RopeAngle angle;
  if (kAngleEarly && early) angle = rope_angle(rope_pair(threadIdx.x % hd, hd, p.rope.interleaved), b.pos, p.rope.inv_freq);
  float m[kG], l[kG];
  auto pass = [&](auto rows) {
    if constexpr (kMma) {
      MmaSoftmax<32 * kEpl, kG> s(p.scale, lane);
      int64_t j0, j1;
      warp_run(b.begin, b.end, warp, kMmaKeys, j0, j1);
      mma_pass_bf16<32 * kEpl, kG, kPrefetch, kCoherent>(s, rows, q_rows, k_base, v_base, j0, j1);
      s.finish(m, l, &sh.o[warp][0][0]);
    } else if constexpr (kWide) {
      WideSoftmax<32 * kEpl, kG> s(q_rows, p.scale, lane);
      wide_pass_bf16<32 * kEpl, kG, kPrefetch>(s, rows, k_base, v_base, b.begin + warp * wide_bf16_step<32 * kEpl>(),
                                               b.end, score);
      s.finish(m, l, &sh.o[warp][0][0]);
    } else {
      m[0] = -FLT_MAX, l[0] = 0.f;
      warp_keys_strided<kEpl>(p, Bf16Elements<decltype(rows)>{rows, k_base, v_base}, q_rows,
                              b.begin + warp * keys_per_step<kEpl>(), b.end, lane, m[0], l[0], &sh.o[warp][0][0],
                              score);
    }
  };
  const auto run = [&](auto rows) {
    if (early) {
      if constexpr (kWide && !kMma) prefetch_early_rows<32 * kEpl>(rows, k_base, v_base, b, warp, lane);
      if (p.rope.overlap) {
        wait_for_block_rows<kG>(p, b);
      } else {
        pdl_wait(), pdl_trigger();
      }
    }
    if (p.rope.qkv) {  // attention_rope_fusable: the cache is the engine's (writable)
      rope_into_block<kG, kWide ? 32 * kEpl : 0>(p, b, rows, kAngleEarly ? &angle : nullptr, q_rope, const_cast<bf16*>(k_base),
                          const_cast<bf16*>(v_base));
      if (p.rope.overlap) release_block_rows<kG>(p, b, warp, lane);
      q_rows = q_rope;
    }
    pass(rows);
  };
  if constexpr (kPaged) {
    run(p.pool.rows(b.seq, hd));
  } else {
    run(ContiguousRows{hd});
  }
  finish_block<kEpl, kG>(p, b, sh, m, l, warp, lane);
}

template <int E, bool kPaged, bool kPrefetch, bool kMma, class Logits, bool kCoherent = false, class Grid>
void launch_wide(const AttentionParams& p, const Logits& l, Grid grid, dim3 block, cudaStream_t stream) {
  if constexpr (kMma && !kCoherent) {
    if (p.rope.qkv) return launch_wide<E, kPaged, kPrefetch, kMma, Logits, true>(p, l, grid, block, stream);
  }
  switch (grouped_heads(p)) {
    case 4: launch_pdl(attention_partial_kernel<E, true, kPaged, 4, kPrefetch, kMma, Logits, kCoherent>, grid(4), block, 0, stream, p, l); break;
    case 2: launch_pdl(attention_partial_kernel<E, true, kPaged, 2, kPrefetch, kMma, Logits, kCoherent>, grid(2), block, 0, stream, p, l); break;
    default: launch_pdl(attention_partial_kernel<E, true, kPaged, 1, kPrefetch, kMma, Logits, kCoherent>, grid(1), block, 0, stream, p, l);
  }
}

// head_dim == 32 * E in {64, 128, 256} with 16-byte loads: the tensor-core pass (head_dim 64/128;
// p.tensor_cores 1, or -1 when a block serves several query heads), else WideSoftmax with or
// without prefetching (p.prefetch). The tensor-core pass always prefetches a warp's next 16 keys:
// GQA 32q/8kv at 32k on the H100, 32 splits, 0.850 of copy bandwidth with, 0.581 without. With a
// score mod (Logits active): WideSoftmax without prefetch only.
template <int E, bool kPaged, class Logits, class Grid>
void launch_vectorized(const AttentionParams& p, const Logits& l, Grid grid, dim3 block, cudaStream_t stream) {
  if constexpr (Logits::kActive) {
    launch_wide<E, kPaged, false, false>(p, l, grid, block, stream);
  } else {
    if constexpr (E == 2 || E == 4) {
      if (p.tensor_cores > 0 || (p.tensor_cores < 0 && grouped_heads(p) > 1))
        return launch_wide<E, kPaged, true, true>(p, l, grid, block, stream);
    }
    if (p.prefetch == 1 || (p.prefetch < 0 && grouped_heads(p) == 1)) {
      launch_wide<E, kPaged, true, false>(p, l, grid, block, stream);
    } else {
      launch_wide<E, kPaged, false, false>(p, l, grid, block, stream);
    }
  }
}

template <bool kPaged, class Logits = PlainLogits>
void launch_attention_layout(const AttentionParams& p, cudaStream_t stream, const Logits& l = {}) {
  const int epl = int((p.hd + 31) / 32);
  const dim3 block(32 * kWarps);
  const auto grid = [&](int g) { return dim3(unsigned(p.n * p.heads / g), unsigned(p.splits)); };
  switch (epl) {
#define CTX_ATTN_WIDE(E)                                                                                      \
  case E:                                                                                                     \
    if (p.vectorized && p.hd == 32 * E) {                                                                     \
      launch_vectorized<E, kPaged>(p, l, grid, block, stream);                                                \
    } else {                                                                                                  \
      launch_pdl(attention_partial_kernel<E, false, kPaged, 1, false, false, Logits>, grid(1), block, 0, stream, p, l); \
    }                                                                                                         \
    break;
#define CTX_ATTN_GENERIC(E) \
  case E: launch_pdl(attention_partial_kernel<E, false, kPaged, 1, false, false, Logits>, grid(1), block, 0, stream, p, l); break;
    CTX_ATTN_GENERIC(1) CTX_ATTN_WIDE(2) CTX_ATTN_GENERIC(3) CTX_ATTN_WIDE(4)
    CTX_ATTN_GENERIC(5) CTX_ATTN_GENERIC(6) CTX_ATTN_GENERIC(7) CTX_ATTN_WIDE(8)
#undef CTX_ATTN_WIDE
#undef CTX_ATTN_GENERIC
  }
}

}  // namespace

bool attention_on_tensor_cores(const AttentionParams& p) {
  const int epl = int((p.hd + 31) / 32);  // launch_attention_layout and launch_vectorized's choice
  return p.score_mod.empty() && p.vectorized && p.hd == 32 * epl && (epl == 2 || epl == 4) &&
         (p.tensor_cores > 0 || (p.tensor_cores < 0 && grouped_heads(p) > 1));
}

bool attention_rope_fusable(const AttentionParams& p) {
  return p.n == 1 && !p.seq_lens && p.kivi.bits == 0 && p.flex.count == 0 && p.score_mod.empty();
}

void launch_attention(const AttentionParams& p, cudaStream_t stream) {
  CTX_CHECK(p.hd <= 256 && p.heads % p.kv_heads == 0 && p.splits >= 1, "attention shape");
  CTX_CHECK(!p.rope.qkv || attention_rope_fusable(p), "attention: RoPE fused into a launch that cannot take it");
  CTX_CHECK(!p.rope.overlap || (p.rope.qkv && p.splits >= 2),
            "attention: running beside the qkv GEMV needs RoPE fused in and at least 2 splits, got ", p.splits);
  if (!p.score_mod.empty()) {
    CTX_CHECK(p.kivi.bits == 0 && !p.pool.paged(), "attention: score mods run over a contiguous bf16 cache only");
    launch_attention_layout<false>(p, stream, ScoreModLogits{p.score_mod, p.heads});
  } else if (p.kivi.bits != 0) {
    launch_kivi_attention(p, stream);
  } else if (p.pool.paged()) {
    CTX_CHECK(p.pool.valid(), "paged attention shape");
    launch_attention_layout<true>(p, stream);
  } else {
    launch_attention_layout<false>(p, stream);
  }
}

}  // namespace ctx::cuda
