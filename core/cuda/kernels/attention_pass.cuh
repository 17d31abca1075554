// The pieces of the split-KV decode attention kernels (internal to core/cuda/kernels): the bf16
// cache's kernel (attention_kernels.cu) and the KIVI kernel over quantized + bf16 keys
// (kivi_attention.cu) are built from them.
//
// A block of kWarps warps handles one (query row, kG query heads of one KV head, chunk of keys):
//   block_keys()          which keys [begin, end) the block's chunk holds
//   WideSoftmax           one warp's online softmax (FlashAttention's rescaling) in the wide layout
//                         (head_dim 64/128/256: kHd / 8 lanes per key row, 8 elements per lane),
//                         fed by wide_pass_bf16 (bf16 rows) or the KIVI pass (codes)
//   warp_keys_strided     the generic layout (lane i owns elements i, i + 32, ...; any head_dim),
//                         with the K/V elements from a source (bf16 rows or dequantized codes)
//   finish_block()        merges the warps and, with several chunks, the chunks that hold keys (the
//                         last to finish combines them all: a counter per (query, head), no second
//                         launch; a chunk without keys takes no part)
#pragma once

#include <cfloat>

#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/kv_rows.cuh"
#include "core/cuda/kernels/logits_transform.cuh"

namespace ctx::cuda {
namespace attention {

constexpr int kWarps = 4;

// The keys of one block: query row t (position pos, of sequence seq), query heads h0 .. h0 + kG - 1
// reading KV head kvh, chunk blockIdx.y of the keys [first, pos]: [begin, end) (empty when begin >=
// end). Chunks are max(ceil(count / splits), p.min_chunk) keys rounded up to a multiple of `align`
// (1: as many chunks as splits hold keys; a multiple: chunk boundaries at multiples of align when
// first = 0). With p.rope.overlap (kernels.h) the keys [first, pos) are cut into splits - 1 chunks that
// way and the new key pos is chunk splits - 1, alone, merged last (slot = the older chunks' count).
struct BlockKeys {
  int64_t t, h0, kvh, seq, pos, begin, end;
  int64_t chunks;  // the chunks that hold keys (<= p.splits; the others return at once in finish_block)
  int64_t slot;    // this chunk's row among the merged ones (< chunks), or >= chunks: no keys
  // Whether the chunk holds the query's own position (the new key: RoPE fused in writes its row).
  __device__ bool holds_new_key() const { return begin <= pos && pos < end; }
};
template <int kG>
__device__ inline BlockKeys block_keys(const AttentionParams& p, int64_t align) {
  BlockKeys b;
  const int64_t groups = p.heads / kG;
  b.t = blockIdx.x / groups, b.h0 = (blockIdx.x % groups) * kG;
  b.kvh = b.h0 / (p.heads / p.kv_heads);
  // Batched decode: row t is the one query of sequence t; else every row is of one sequence.
  b.seq = p.seq_lens ? b.t : 0;
  b.pos = p.seq_lens ? int64_t(p.seq_lens[b.t]) - 1 : int64_t(*p.pos0) + b.t;
  int64_t first = p.window > 0 && b.pos - p.window + 1 > 0 ? b.pos - p.window + 1 : 0;
  int64_t last = b.pos;  // the last key this query sees
  if (p.flex.count > 0) {  // a flex mask: its interval, within the keys cached so far
    int64_t f, l;
    p.flex.interval(b.pos, f, l);
    const int64_t cached = p.seq_lens ? b.pos : int64_t(*p.pos0) + p.n - 1;
    first = f > first ? f : first, last = l < cached ? l : cached;
  }
  const bool own_chunk = p.rope.overlap != nullptr;  // the new key alone in the last split
  const int64_t parts = own_chunk ? p.splits - 1 : p.splits;
  if (own_chunk) --last;
  const int64_t count = last - first + 1;
  int64_t chunk = count > 0 ? (count + parts - 1) / parts : 1;
  if (chunk < p.min_chunk) chunk = p.min_chunk;
  chunk = (chunk + align - 1) / align * align;
  b.begin = first + blockIdx.y * chunk;
  b.end = b.begin + chunk < last + 1 ? b.begin + chunk : last + 1;
  b.slot = blockIdx.y;
  if (!own_chunk) {
    b.chunks = count > 0 ? (count + chunk - 1) / chunk : p.splits;
    return b;
  }
  const int64_t older = count > 0 ? (count + chunk - 1) / chunk : 0;
  b.chunks = older + 1;
  if (blockIdx.y == p.splits - 1) {
    b.begin = b.pos, b.end = b.pos + 1, b.slot = older;
  } else if (blockIdx.y >= older) {
    b.slot = b.chunks;  // no keys
  }
  return b;
}

// The score point of one block (logits_transform.cuh): query head h0 + g at position pos, key j.
template <class Logits>
struct BlockLogits {
  Logits logits;
  int64_t h0, pos;
  __device__ __forceinline__ float operator()(float s, int g, int64_t j) const { return logits(s, h0 + g, pos, j); }
};

// Keys a warp of the generic layout loads at once: kEpl * kKeys elements of K and of V per lane.
template <int kEpl>
constexpr int keys_per_step() { return kEpl <= 4 ? 8 : 4; }

// K/V elements of the bf16 cache for warp_keys_strided: rows(j) + e of k and v.
template <class Rows>
struct Bf16Elements {
  using Elem = bf16;
  Rows rows;
  const bf16 *k, *v;
  __device__ static Elem zero() { return __float2bfloat16(0.f); }
  template <int kN>
  __device__ void load(int64_t j, int lane, int64_t hd, Elem (&kr)[kN], Elem (&vr)[kN]) const {
    const int64_t row = rows(j);
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      const int64_t e = lane + 32 * i;
      kr[i] = e < hd ? k[row + e] : zero();
      vr[i] = e < hd ? v[row + e] : zero();
    }
  }
};
__device__ inline float to_float(bf16 x) { return __bfloat162float(x); }
__device__ inline float to_float(float x) { return x; }

// One warp's pass over keys [j_first, end) stepping by kWarps * keys per step: the generic layout
// (lane i owns elements i, i + 32, ... of the head; any head_dim). Leaves the warp's max in m, its
// sum in l and its unnormalised output in so[e] (e < hd). Src::load(j, lane, hd, kr, vr) writes key
// j's elements lane + 32 i, i < kEpl (Src::zero() past hd). score: the scores' transform.
template <int kEpl, class Src, class Score = BlockLogits<PlainLogits>>
__device__ inline void warp_keys_strided(const AttentionParams& p, const Src& src, const bf16* q_row, int64_t j_first,
                                         int64_t end, int lane, float& m, float& l, float* so,
                                         const Score& score = {}) {
  using Elem = typename Src::Elem;
  constexpr int kKeys = keys_per_step<kEpl>();
  const int64_t hd = p.hd;
  float q[kEpl], acc[kEpl];
#pragma unroll
  for (int i = 0; i < kEpl; ++i) {
    const int64_t e = lane + 32 * i;
    q[i] = e < hd ? __bfloat162float(q_row[e]) * p.scale : 0.f;
    acc[i] = 0.f;
  }
  for (int64_t j0 = j_first; j0 < end; j0 += kWarps * kKeys) {
    Elem kr[kKeys][kEpl], vr[kKeys][kEpl];
#pragma unroll
    for (int g = 0; g < kKeys; ++g) {
      if (j0 + g < end) {
        src.load(j0 + g, lane, hd, kr[g], vr[g]);
      } else {
#pragma unroll
        for (int i = 0; i < kEpl; ++i) kr[g][i] = vr[g][i] = Src::zero();
      }
    }
    float sc[kKeys];
    float m_new = m;
#pragma unroll
    for (int g = 0; g < kKeys; ++g) {
      float d = 0.f;
#pragma unroll
      for (int i = 0; i < kEpl; ++i) d = fmaf(q[i], to_float(kr[g][i]), d);
      sc[g] = score(warp_sum(d), 0, j0 + g);
      if (j0 + g < end) m_new = fmaxf(m_new, sc[g]);
    }
    const float correction = __expf(m - m_new);
    l *= correction;
#pragma unroll
    for (int i = 0; i < kEpl; ++i) acc[i] *= correction;
#pragma unroll
    for (int g = 0; g < kKeys; ++g) {
      if (j0 + g >= end) break;
      const float w = __expf(sc[g] - m_new);
      l += w;
#pragma unroll
      for (int i = 0; i < kEpl; ++i) acc[i] = fmaf(w, to_float(vr[g][i]), acc[i]);
    }
    m = m_new;
  }
#pragma unroll
  for (int i = 0; i < kEpl; ++i) so[lane + 32 * i] = acc[i];
}

__device__ inline void bf16x8_to_float(uint4 v, float (&f)[8]) {
  const __nv_bfloat162* b = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 x = __bfloat1622float2(b[i]);
    f[2 * i] = x.x, f[2 * i + 1] = x.y;
  }
}

// One warp's online softmax for head_dim == kHd in {64, 128, 256} and kG query heads that share the
// KV head (GQA: each K/V row is loaded once for all of them): a key row is kLanes = kHd / 8 lanes
// of 8 elements each (lane `part` owns elements 8 part .. 8 part + 7), so one load instruction
// covers kPerLoad = 32 / kLanes keys (lane `sub` of them): FlashInfer's decode layout. m is the
// warp's running max (the same on every lane); acc and l_lane are this lane's keys' shares, summed
// over the subs by finish().
template <int kHd, int kG>
struct WideSoftmax {
  static constexpr int kLanes = kHd / 8;        // lanes per key row
  static constexpr int kPerLoad = 32 / kLanes;  // keys per load instruction
  int sub, part;
  float q[kG][8], acc[kG][8], l_lane[kG], m[kG];

  // q_rows: the kG heads' query rows one after another.
  __device__ WideSoftmax(const bf16* q_rows, float scale, int lane) : sub(lane / kLanes), part(lane % kLanes) {
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      bf16x8_to_float(reinterpret_cast<const uint4*>(q_rows + g * kHd)[part], q[g]);
#pragma unroll
      for (int t = 0; t < 8; ++t) q[g][t] *= scale, acc[g][t] = 0.f;
      l_lane[g] = 0.f, m[g] = -FLT_MAX;
    }
  }
  // The sum of a lane's partial dot product over the lanes of its key row.
  __device__ static float row_sum(float d) {
#pragma unroll
    for (int o = kLanes / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
    return d;
  }
  // Raises m to cover kN keys' scores per head (-FLT_MAX: no key) and rescales acc and l_lane;
  // correction[g] is the factor, for any further per-lane sums of the caller.
  template <int kN>
  __device__ void rescale(const float (&sc)[kG][kN], float (&correction)[kG]) {
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      float m_new = m[g];
#pragma unroll
      for (int i = 0; i < kN; ++i) m_new = fmaxf(m_new, sc[g][i]);
      for (int o = kLanes; o < 32; o <<= 1) m_new = fmaxf(m_new, __shfl_xor_sync(0xffffffffu, m_new, o));
      correction[g] = __expf(m[g] - m_new);
      l_lane[g] *= correction[g];
#pragma unroll
      for (int t = 0; t < 8; ++t) acc[g][t] *= correction[g];
      m[g] = m_new;
    }
  }
  // The softmax weight of a score after rescale(); each part-lane of a key adds it once to l_lane,
  // so the sum over subs counts every key once.
  __device__ float weight(float s, int g) {
    const float w = s == -FLT_MAX ? 0.f : __expf(s - m[g]);
    l_lane[g] += w;
    return w;
  }
  // Sums over the subs (lanes with the same part hold the same elements of different keys): every
  // lane gets the warp's m_out[g] and l_out[g]; so[g * kHd + e] = the warp's unnormalised output.
  __device__ void finish(float (&m_out)[kG], float (&l_out)[kG], float* so) {
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      for (int o = kLanes; o < 32; o <<= 1) {
        l_lane[g] += __shfl_xor_sync(0xffffffffu, l_lane[g], o);
#pragma unroll
        for (int t = 0; t < 8; ++t) acc[g][t] += __shfl_xor_sync(0xffffffffu, acc[g][t], o);
      }
      m_out[g] = m[g], l_out[g] = l_lane[g];
      if (sub == 0)
#pragma unroll
        for (int t = 0; t < 8; ++t) so[g * kHd + part * 8 + t] = acc[g][t];
    }
  }
};

// Keys a warp's wide bf16 pass loads per step (kLoads per lane, K and V, in flight at once).
template <int kHd>
constexpr int wide_bf16_step() { return (32 / (kHd / 8)) * (kHd <= 128 ? 4 : 8); }

// The wide pass over bf16 rows: keys [j_first, end) stepping by kWarps * wide_bf16_step<kHd>().
// kPrefetch: a step's K/V rows are loaded before the previous step's are used, so that a warp has
// two steps of loads in flight (AttentionParams::prefetch; more registers). score: the scores' transform.
template <int kHd, int kG, bool kPrefetch = false, class Rows, class Score = BlockLogits<PlainLogits>>
__device__ inline void wide_pass_bf16(WideSoftmax<kHd, kG>& s, Rows rows, const bf16* k_base, const bf16* v_base,
                                      int64_t j_first, int64_t end, const Score& score = {}) {
  constexpr int kPerLoad = WideSoftmax<kHd, kG>::kPerLoad;
  constexpr int kLoads = kHd <= 128 ? 4 : 8;
  constexpr int kStep = wide_bf16_step<kHd>();
  auto load = [&](int64_t j0, uint4 (&kv)[kLoads], uint4 (&vv)[kLoads]) {
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const int64_t j = j0 + i * kPerLoad + s.sub;
      const int64_t row = j < end ? rows(j) : 0;
      kv[i] = j < end ? reinterpret_cast<const uint4*>(k_base + row)[s.part] : make_uint4(0, 0, 0, 0);
      vv[i] = j < end ? reinterpret_cast<const uint4*>(v_base + row)[s.part] : make_uint4(0, 0, 0, 0);
    }
  };
  uint4 kv[kLoads], vv[kLoads];
  if constexpr (kPrefetch) load(j_first, kv, vv);
  for (int64_t j0 = j_first; j0 < end; j0 += kWarps * kStep) {
    uint4 k_next[kLoads], v_next[kLoads];
    if constexpr (kPrefetch) {
      load(j0 + kWarps * kStep, k_next, v_next);
    } else {
      load(j0, kv, vv);
    }
    float sc[kG][kLoads], correction[kG];
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      float kf[8];
      bf16x8_to_float(kv[i], kf);
      const bool valid = j0 + i * kPerLoad + s.sub < end;
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        float d = 0.f;
#pragma unroll
        for (int t = 0; t < 8; ++t) d = fmaf(s.q[g][t], kf[t], d);
        d = s.row_sum(d);
        sc[g][i] = valid ? score(d, g, j0 + i * kPerLoad + s.sub) : -FLT_MAX;
      }
    }
    s.rescale(sc, correction);
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      float vf[8];
      bf16x8_to_float(vv[i], vf);
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        const float w = s.weight(sc[g][i], g);
#pragma unroll
        for (int t = 0; t < 8; ++t) s.acc[g][t] = fmaf(w, vf[t], s.acc[g][t]);
      }
    }
    if constexpr (kPrefetch)
#pragma unroll
      for (int i = 0; i < kLoads; ++i) kv[i] = k_next[i], vv[i] = v_next[i];
  }
}

// Shared memory of a block: each warp's (m, l, unnormalised output) per head.
template <int kEpl, int kG>
struct BlockShared {
  float m[kWarps][kG], l[kWarps][kG];
  float o[kWarps][kG][kEpl * 32];
};

// The most split-KV chunks whose outputs the last chunk to finish holds in registers while combining
// them (finish_block): up to this many, one round trip to L2 reads them all; for head_dim up to 32 *
// kHeldMaxEpl (wider heads would hold too many registers).
constexpr int kHeldChunks = 8, kHeldMaxEpl = 4;

// After every warp's pass (m, l its results; its output already in sh.o[warp]): merges the warps
// (warp g for head h0 + g) and writes the output, or with several chunks publishes this chunk's
// (m, l, o) and, if it is the last of (query, head) to finish, combines them all. Every thread of
// the block calls it.
template <int kEpl, int kG>
__device__ inline void finish_block(const AttentionParams& p, const BlockKeys& b, BlockShared<kEpl, kG>& sh,
                                    const float (&m)[kG], const float (&l)[kG], int warp, int lane) {
  if (b.slot >= b.chunks) return;  // a chunk without keys (min_chunk): the others merge without it
  if (lane == 0)
#pragma unroll
    for (int g = 0; g < kG; ++g) sh.m[warp][g] = m[g], sh.l[warp][g] = l[g];
  __syncthreads();
  if (warp >= kG) return;
  const int g = warp;
  const int64_t hd = p.hd, split = b.slot;
  const int64_t qh = b.t * p.heads + b.h0 + g;
  float mm = -FLT_MAX;
  for (int w = 0; w < kWarps; ++w) mm = fmaxf(mm, sh.m[w][g]);
  float ll = 0.f;
  for (int w = 0; w < kWarps; ++w) ll += sh.l[w][g] > 0.f ? sh.l[w][g] * __expf(sh.m[w][g] - mm) : 0.f;
  float o[kEpl];
#pragma unroll
  for (int i = 0; i < kEpl; ++i) {
    const int64_t e = lane + 32 * i;
    o[i] = 0.f;
    if (e < hd)
      for (int w = 0; w < kWarps; ++w)
        if (sh.l[w][g] > 0.f) o[i] += sh.o[w][g][e] * __expf(sh.m[w][g] - mm);
  }
  bf16* out = p.out + qh * hd;
  if (b.chunks == 1) {
#pragma unroll
    for (int i = 0; i < kEpl; ++i)
      if (lane + 32 * i < hd) out[lane + 32 * i] = __float2bfloat16(o[i] / ll);
    return;
  }
  // Split-KV: publish this chunk's (m, l, o); the last chunk of (query, head) to arrive combines them
  // all (the writes, then a fence, then the counter; the last one fences and reads them from L2).
  float* mine = p.partial + (qh * p.splits + split) * (hd + 2);
  if (lane == 0) mine[0] = mm, mine[1] = ll;
#pragma unroll
  for (int i = 0; i < kEpl; ++i)
    if (lane + 32 * i < hd) mine[2 + lane + 32 * i] = o[i];
  __threadfence();
  __syncwarp();
  int arrived = 0;
  if (lane == 0) arrived = atomicAdd(p.counters + qh, 1);
  arrived = __shfl_sync(0xffffffffu, arrived, 0);
  if (arrived != b.chunks - 1) return;
  __threadfence();
  const float* part = p.partial + qh * p.splits * (hd + 2);
  const int64_t stride = hd + 2;
  float num[kEpl], den = 0.f;
#pragma unroll
  for (int i = 0; i < kEpl; ++i) num[i] = 0.f;
  constexpr int kHeld = kEpl <= kHeldMaxEpl ? kHeldChunks : 0;
  if (b.chunks <= kHeld) {
    // Few chunks (short contexts): every chunk's (m, l) (lane s: chunk s's) and o rows are loaded
    // at once, one round trip to L2, then combined in the order of the loop below (the same sums).
    float held[kHeld > 0 ? kHeld : 1][kEpl], ms = -FLT_MAX, ls = 0.f;
    if (lane < b.chunks) ms = __ldcg(part + lane * stride), ls = __ldcg(part + lane * stride + 1);
#pragma unroll
    for (int k = 0; k < kHeld; ++k)
#pragma unroll
      for (int i = 0; i < kEpl; ++i)
        held[k][i] = k < b.chunks && lane + 32 * i < hd ? __ldcg(part + k * stride + 2 + lane + 32 * i) : 0.f;
    float gm = lane < b.chunks && ls > 0.f ? ms : -FLT_MAX;
    for (int o = 16; o > 0; o >>= 1) gm = fmaxf(gm, __shfl_xor_sync(0xffffffffu, gm, o));
    float f = 0.f;  // an empty chunk (l == 0, o == 0) weighs nothing
    if (lane < b.chunks && ls > 0.f) f = __expf(ms - gm), den += ls * f;
#pragma unroll
    for (int k = 0; k < kHeld; ++k) {
      const float fk = __shfl_sync(0xffffffffu, f, k);
      if (k < b.chunks)
#pragma unroll
        for (int i = 0; i < kEpl; ++i)
          if (lane + 32 * i < hd) num[i] = fmaf(held[k][i], fk, num[i]);
    }
  } else {
    // Lane s holds split s's (m, l) (32 splits per round trip); the o rows are then read 4 splits at
    // a time with their weights broadcast from the owning lane.
    float gm = -FLT_MAX;
    for (int s0 = 0; s0 < b.chunks; s0 += 32) {
      const int s = s0 + lane;
      if (s < b.chunks && __ldcg(part + s * stride + 1) > 0.f) gm = fmaxf(gm, __ldcg(part + s * stride));
    }
    for (int o = 16; o > 0; o >>= 1) gm = fmaxf(gm, __shfl_xor_sync(0xffffffffu, gm, o));
    for (int s0 = 0; s0 < b.chunks; s0 += 32) {
      const int s = s0 + lane;
      float f = 0.f;  // an empty chunk (l == 0, o == 0) weighs nothing
      if (s < b.chunks) {
        const float ls = __ldcg(part + s * stride + 1);
        if (ls > 0.f) f = __expf(__ldcg(part + s * stride) - gm), den += ls * f;
      }
      const int batch = b.chunks - s0 < 32 ? int(b.chunks - s0) : 32;
#pragma unroll 8
      for (int k = 0; k < batch; ++k) {
        const float fk = __shfl_sync(0xffffffffu, f, k);
        const float* ps = part + (s0 + k) * stride + 2;
#pragma unroll
        for (int i = 0; i < kEpl; ++i)
          if (lane + 32 * i < hd) num[i] = fmaf(__ldcg(ps + lane + 32 * i), fk, num[i]);
      }
    }
  }
  den = warp_sum(den);
#pragma unroll
  for (int i = 0; i < kEpl; ++i)
    if (lane + 32 * i < hd) out[lane + 32 * i] = __float2bfloat16(num[i] / den);
  if (lane == 0) p.counters[qh] = 0;  // ready for the next launch
}

// Query heads per block for the wide layout: as many of a KV head's group as divide it, up to 4.
inline int grouped_heads(const AttentionParams& p) {
  const int64_t group = p.heads / p.kv_heads;
  const int most = p.max_grouped_heads > 0 ? p.max_grouped_heads : 4;
  return group % 4 == 0 && most >= 4 ? 4 : group % 2 == 0 && most >= 2 ? 2 : 1;
}

}  // namespace attention
}  // namespace ctx::cuda
