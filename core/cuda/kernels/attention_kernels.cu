// Causal attention over the bf16 KV cache, split-KV (kernels.h): one block per (query, head, chunk
// of keys) keeps an online max and sum (FlashAttention's rescaling) per warp and merges its four
// warps; with one chunk it writes the output, with several it writes (m, l, unnormalised o) and the
// chunk that finishes last merges them all (a counter per (query, head): no second launch).
// Lane i of a warp owns elements i, i + 32, ... of the head (kEpl of them), so any head_dim <= 256
// works and a key row is read with coalesced loads; a warp loads the K and V rows of several keys
// before using any of them, so that many loads are in flight (decode reads the cache at HBM speed
// only with enough of them).
// Where key j of a sequence lives is a policy (ContiguousRows, PagedRows), so the same kernel reads
// the engine's contiguous cache and a paged pool through a block table (PagedAttention).
#include <cfloat>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {

namespace {

constexpr int kWarps = 4;

// Element offset of key j's row within one KV head's storage.
struct ContiguousRows {
  int64_t hd;
  __device__ int64_t operator()(int64_t j) const { return j * hd; }
};
// Paged: [pool_blocks][block_size][hd] per KV head; block j >> shift of the sequence is table[j >> shift].
struct PagedRows {
  const int32_t* table;
  int shift;
  int64_t hd;
  __device__ int64_t operator()(int64_t j) const {
    return ((int64_t(__ldg(table + (j >> shift))) << shift) | (j & ((int64_t(1) << shift) - 1))) * hd;
  }
};

// Keys a warp loads at once: kEpl * kKeys bf16 of K and of V per lane in registers.
template <int kEpl>
constexpr int keys_per_step() { return kEpl <= 4 ? 8 : 4; }

// One warp's pass over keys [j0, end) stepping by kWarps * keys per step: the generic layout (lane i
// owns elements i, i + 32, ... of the head; any head_dim). Leaves the warp's max in m, its sum in l
// and its unnormalised output in so[e] (e < hd).
template <int kEpl, class Rows>
__device__ inline void warp_keys_strided(const AttentionParams& p, Rows rows, const bf16* q_row, const bf16* k_base,
                                         const bf16* v_base, int64_t j_first, int64_t end, int lane, float& m,
                                         float& l, float* so) {
  constexpr int kKeys = keys_per_step<kEpl>();
  const int64_t hd = p.hd;
  float q[kEpl], acc[kEpl];
#pragma unroll
  for (int i = 0; i < kEpl; ++i) {
    const int64_t e = lane + 32 * i;
    q[i] = e < hd ? __bfloat162float(q_row[e]) * p.scale : 0.f;
    acc[i] = 0.f;
  }
  const bf16 zero = __float2bfloat16(0.f);
  for (int64_t j0 = j_first; j0 < end; j0 += kWarps * kKeys) {
    bf16 kr[kKeys][kEpl], vr[kKeys][kEpl];
#pragma unroll
    for (int g = 0; g < kKeys; ++g) {
      const int64_t row = j0 + g < end ? rows(j0 + g) : 0;
#pragma unroll
      for (int i = 0; i < kEpl; ++i) {
        const int64_t e = lane + 32 * i;
        const bool ok = j0 + g < end && e < hd;
        kr[g][i] = ok ? k_base[row + e] : zero;
        vr[g][i] = ok ? v_base[row + e] : zero;
      }
    }
    float sc[kKeys];
    float m_new = m;
#pragma unroll
    for (int g = 0; g < kKeys; ++g) {
      float d = 0.f;
#pragma unroll
      for (int i = 0; i < kEpl; ++i) d = fmaf(q[i], __bfloat162float(kr[g][i]), d);
      sc[g] = warp_sum(d);
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
      for (int i = 0; i < kEpl; ++i) acc[i] = fmaf(w, __bfloat162float(vr[g][i]), acc[i]);
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

// The same pass for head_dim == kHd in {64, 128, 256} and kG query heads that share the KV head
// (GQA: each K/V row is loaded once for all of them): a key row is kHd / 8 lanes of 16-byte loads,
// so one load instruction covers 32 / (kHd / 8) keys and a lane keeps kLoads of them in flight (K and
// V): FlashInfer's decode layout. q_rows holds the kG heads' query rows one after another. Every
// lane ends with the warp's m[g] and l[g]; so[g * kHd + e] as above.
template <int kHd, int kG, bool kPrefetch, class Rows>
__device__ inline void warp_keys_wide(const AttentionParams& p, Rows rows, const bf16* q_rows, const bf16* k_base,
                                      const bf16* v_base, int64_t j_first, int64_t end, int lane, float (&m)[kG],
                                      float (&l)[kG], float* so) {
  constexpr int kLanes = kHd / 8;           // lanes per key row
  constexpr int kPerLoad = 32 / kLanes;     // keys per load instruction
  constexpr int kLoads = kHd <= 128 ? 4 : 8;
  constexpr int kStep = kPerLoad * kLoads;  // keys per warp step
  const int sub = lane / kLanes, part = lane % kLanes;
  float q[kG][8], acc[kG][8];
  float l_lane[kG];  // this lane's keys' share of l (summed over the subs at the end)
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    bf16x8_to_float(reinterpret_cast<const uint4*>(q_rows + g * kHd)[part], q[g]);
#pragma unroll
    for (int t = 0; t < 8; ++t) q[g][t] *= p.scale, acc[g][t] = 0.f;
    l_lane[g] = 0.f;
  }
  // The K/V rows of a step's keys (zeros past `end`). kPrefetch: the next step's are loaded before
  // this step's are used, so that a warp has two steps of loads in flight (more registers).
  auto load = [&](int64_t j0, uint4 (&kv)[kLoads], uint4 (&vv)[kLoads]) {
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const int64_t j = j0 + i * kPerLoad + sub;
      const int64_t row = j < end ? rows(j) : 0;
      kv[i] = j < end ? reinterpret_cast<const uint4*>(k_base + row)[part] : make_uint4(0, 0, 0, 0);
      vv[i] = j < end ? reinterpret_cast<const uint4*>(v_base + row)[part] : make_uint4(0, 0, 0, 0);
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
    float sc[kG][kLoads], m_new[kG];
#pragma unroll
    for (int g = 0; g < kG; ++g) m_new[g] = m[g];
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      float kf[8];
      bf16x8_to_float(kv[i], kf);
      const bool valid = j0 + i * kPerLoad + sub < end;
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        float d = 0.f;
#pragma unroll
        for (int t = 0; t < 8; ++t) d = fmaf(q[g][t], kf[t], d);
        for (int o = kLanes / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        sc[g][i] = valid ? d : -FLT_MAX;
        m_new[g] = fmaxf(m_new[g], sc[g][i]);
      }
    }
#pragma unroll
    for (int g = 0; g < kG; ++g) {
      for (int o = kLanes; o < 32; o <<= 1) m_new[g] = fmaxf(m_new[g], __shfl_xor_sync(0xffffffffu, m_new[g], o));
      const float correction = __expf(m[g] - m_new[g]);
      l_lane[g] *= correction;
#pragma unroll
      for (int t = 0; t < 8; ++t) acc[g][t] *= correction;
      m[g] = m_new[g];
    }
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      float vf[8];
      bf16x8_to_float(vv[i], vf);
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        const float w = sc[g][i] == -FLT_MAX ? 0.f : __expf(sc[g][i] - m[g]);
        l_lane[g] += w;  // each part-lane of the key adds it once; the sum over subs counts every key once
#pragma unroll
        for (int t = 0; t < 8; ++t) acc[g][t] = fmaf(w, vf[t], acc[g][t]);
      }
    }
    if constexpr (kPrefetch)
#pragma unroll
      for (int i = 0; i < kLoads; ++i) kv[i] = k_next[i], vv[i] = v_next[i];
  }
  // Sum over the subs (lanes with the same part hold the same elements of different keys).
#pragma unroll
  for (int g = 0; g < kG; ++g) {
    for (int o = kLanes; o < 32; o <<= 1) {
      l_lane[g] += __shfl_xor_sync(0xffffffffu, l_lane[g], o);
#pragma unroll
      for (int t = 0; t < 8; ++t) acc[g][t] += __shfl_xor_sync(0xffffffffu, acc[g][t], o);
    }
    l[g] = l_lane[g];
    if (sub == 0)
#pragma unroll
      for (int t = 0; t < 8; ++t) so[g * kHd + part * 8 + t] = acc[g][t];
  }
}

// kWide: head_dim == 32 * kEpl in {64, 128, 256} (warp_keys_wide), else warp_keys_strided.
// kPaged: K/V through p.block_table (PagedRows), else contiguous. kG: query heads per block, all
// reading the same KV head (1 unless kWide); warp g < kG merges head g.
template <int kEpl, bool kWide, bool kPaged, int kG, bool kPrefetch = false>
__global__ void attention_partial_kernel(AttentionParams p) {
  static_assert(kG == 1 || kWide, "grouped heads need the wide pass");
  static_assert(kG <= kWarps, "one merging warp per head");
  pdl_wait();
  pdl_trigger();
  const int64_t groups = p.heads / kG;
  const int64_t t = blockIdx.x / groups, h0 = (blockIdx.x % groups) * kG;  // query row, first head
  const int64_t kvh = h0 / (p.heads / p.kv_heads);
  const int split = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t hd = p.hd;
  // Batched decode: row t is the one query of sequence t; else every row is of one sequence.
  const int64_t seq = p.seq_lens ? t : 0;
  const int64_t pos = p.seq_lens ? int64_t(p.seq_lens[t]) - 1 : int64_t(*p.pos0) + t;
  int64_t first = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;
  int64_t last = pos;  // the last key this query sees
  if (p.flex.count > 0) {  // a flex mask: its interval, within the keys cached so far
    int64_t f, l;
    p.flex.interval(pos, f, l);
    const int64_t cached = p.seq_lens ? pos : int64_t(*p.pos0) + p.n - 1;
    first = f > first ? f : first, last = l < cached ? l : cached;
  }
  const int64_t count = last - first + 1;
  const int64_t chunk = (count + p.splits - 1) / p.splits;
  const int64_t begin = first + split * chunk;
  const int64_t end = begin + chunk < last + 1 ? begin + chunk : last + 1;

  __shared__ float sm[kWarps][kG], sl[kWarps][kG];
  __shared__ float so[kWarps][kG][kEpl * 32];
  const bf16* q_rows = p.q + (t * p.heads + h0) * hd;
  // Rows per KV head: the pool's blocks when paged, else the sequence's capacity.
  const int64_t head_rows = kPaged ? p.pool_blocks << p.block_shift : p.capacity;
  const int64_t base = (kPaged ? 0 : seq * p.kv_heads * p.capacity * hd) + kvh * head_rows * hd;
  const bf16* k_base = p.k_cache + base;
  const bf16* v_base = p.v_cache + base;
  float m[kG], l[kG];
#pragma unroll
  for (int g = 0; g < kG; ++g) m[g] = -FLT_MAX, l[g] = 0.f;
  auto pass = [&](auto rows) {
    if constexpr (kWide) {
      constexpr int kStep = (32 / (kEpl * 4)) * (kEpl <= 4 ? 4 : 8);
      warp_keys_wide<32 * kEpl, kG, kPrefetch>(p, rows, q_rows, k_base, v_base, begin + warp * kStep, end, lane, m, l,
                                    &so[warp][0][0]);
    } else {
      warp_keys_strided<kEpl>(p, rows, q_rows, k_base, v_base, begin + warp * keys_per_step<kEpl>(), end, lane, m[0],
                              l[0], &so[warp][0][0]);
    }
  };
  if constexpr (kPaged) {
    pass(PagedRows{p.block_table + seq * p.max_blocks, p.block_shift, hd});
  } else {
    pass(ContiguousRows{hd});
  }
  if (lane == 0)
#pragma unroll
    for (int g = 0; g < kG; ++g) sm[warp][g] = m[g], sl[warp][g] = l[g];
  __syncthreads();
  // Merge the warps: warp g for head h0 + g.
  if (warp >= kG) return;
  const int g = warp;
  const int64_t qh = t * p.heads + h0 + g;
  float mm = -FLT_MAX;
  for (int w = 0; w < kWarps; ++w) mm = fmaxf(mm, sm[w][g]);
  float ll = 0.f;
  for (int w = 0; w < kWarps; ++w) ll += sl[w][g] > 0.f ? sl[w][g] * __expf(sm[w][g] - mm) : 0.f;
  float o[kEpl];
#pragma unroll
  for (int i = 0; i < kEpl; ++i) {
    const int64_t e = lane + 32 * i;
    o[i] = 0.f;
    if (e < hd)
      for (int w = 0; w < kWarps; ++w)
        if (sl[w][g] > 0.f) o[i] += so[w][g][e] * __expf(sm[w][g] - mm);
  }
  bf16* out = p.out + qh * hd;
  if (p.splits == 1) {
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
  if (arrived != p.splits - 1) return;
  __threadfence();
  // Lane s holds split s's (m, l) (32 splits per round trip); the o rows are then read 4 splits at
  // a time with their weights broadcast from the owning lane.
  const float* part = p.partial + qh * p.splits * (hd + 2);
  const int64_t stride = hd + 2;
  float gm = -FLT_MAX;
  for (int s0 = 0; s0 < p.splits; s0 += 32) {
    const int s = s0 + lane;
    if (s < p.splits && __ldcg(part + s * stride + 1) > 0.f) gm = fmaxf(gm, __ldcg(part + s * stride));
  }
  for (int o = 16; o > 0; o >>= 1) gm = fmaxf(gm, __shfl_xor_sync(0xffffffffu, gm, o));
  float num[kEpl], den = 0.f;
#pragma unroll
  for (int i = 0; i < kEpl; ++i) num[i] = 0.f;
  for (int s0 = 0; s0 < p.splits; s0 += 32) {
    const int s = s0 + lane;
    float f = 0.f;  // an empty chunk (l == 0, o == 0) weighs nothing
    if (s < p.splits) {
      const float ls = __ldcg(part + s * stride + 1);
      if (ls > 0.f) f = __expf(__ldcg(part + s * stride) - gm), den += ls * f;
    }
    const int batch = p.splits - s0 < 32 ? p.splits - s0 : 32;
#pragma unroll 8
    for (int k = 0; k < batch; ++k) {
      const float fk = __shfl_sync(0xffffffffu, f, k);
      const float* ps = part + (s0 + k) * stride + 2;
#pragma unroll
      for (int i = 0; i < kEpl; ++i)
        if (lane + 32 * i < hd) num[i] = fmaf(__ldcg(ps + lane + 32 * i), fk, num[i]);
    }
  }
  den = warp_sum(den);
#pragma unroll
  for (int i = 0; i < kEpl; ++i)
    if (lane + 32 * i < hd) out[lane + 32 * i] = __float2bfloat16(num[i] / den);
  if (lane == 0) p.counters[qh] = 0;  // ready for the next launch
}

}  // namespace

namespace {

// Query heads per block for the wide kernel: as many of a KV head's group as divide it, up to 4.
int grouped_heads(const AttentionParams& p) {
  const int64_t group = p.heads / p.kv_heads;
  const int most = p.max_grouped_heads > 0 ? p.max_grouped_heads : 4;
  return group % 4 == 0 && most >= 4 ? 4 : group % 2 == 0 && most >= 2 ? 2 : 1;
}

template <int E, bool kPaged, bool kPrefetch, class Grid>
void launch_wide(const AttentionParams& p, Grid grid, dim3 block, cudaStream_t stream) {
  switch (grouped_heads(p)) {
    case 4: launch_pdl(attention_partial_kernel<E, true, kPaged, 4, kPrefetch>, grid(4), block, 0, stream, p); break;
    case 2: launch_pdl(attention_partial_kernel<E, true, kPaged, 2, kPrefetch>, grid(2), block, 0, stream, p); break;
    default: launch_pdl(attention_partial_kernel<E, true, kPaged, 1, kPrefetch>, grid(1), block, 0, stream, p);
  }
}

template <bool kPaged>
void launch_attention_layout(const AttentionParams& p, cudaStream_t stream) {
  const int epl = int((p.hd + 31) / 32);
  const dim3 block(32 * kWarps);
  const auto grid = [&](int g) { return dim3(unsigned(p.n * p.heads / g), unsigned(p.splits)); };
  switch (epl) {
#define CTX_ATTN_WIDE(E)                                                                                 \
  case E:                                                                                                \
    if (p.vectorized && p.hd == 32 * E) {                                                                \
      if (p.prefetch == 1 || (p.prefetch < 0 && grouped_heads(p) == 1)) {                               \
        launch_wide<E, kPaged, true>(p, grid, block, stream);                                           \
      } else {                                                                                           \
        launch_wide<E, kPaged, false>(p, grid, block, stream);                                          \
      }                                                                                                  \
    } else {                                                                                             \
      launch_pdl(attention_partial_kernel<E, false, kPaged, 1>, grid(1), block, 0, stream, p);           \
    }                                                                                                    \
    break;
#define CTX_ATTN_GENERIC(E) \
  case E: launch_pdl(attention_partial_kernel<E, false, kPaged, 1>, grid(1), block, 0, stream, p); break;
    CTX_ATTN_GENERIC(1) CTX_ATTN_WIDE(2) CTX_ATTN_GENERIC(3) CTX_ATTN_WIDE(4)
    CTX_ATTN_GENERIC(5) CTX_ATTN_GENERIC(6) CTX_ATTN_GENERIC(7) CTX_ATTN_WIDE(8)
#undef CTX_ATTN_WIDE
#undef CTX_ATTN_GENERIC
  }
}

}  // namespace

void launch_attention(const AttentionParams& p, cudaStream_t stream) {
  CTX_CHECK(p.hd <= 256 && p.heads % p.kv_heads == 0 && p.splits >= 1, "attention shape");
  if (p.block_table) {
    CTX_CHECK(p.block_shift >= 0 && p.block_shift <= 10 && p.max_blocks > 0 && p.pool_blocks > 0, "paged attention shape");
    launch_attention_layout<true>(p, stream);
  } else {
    launch_attention_layout<false>(p, stream);
  }
}

}  // namespace ctx::cuda
