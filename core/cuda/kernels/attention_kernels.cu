// Causal attention over the bf16 KV cache, split-KV (kernels.h): one block per (query, head, chunk
// of keys) keeps an online max and sum (FlashAttention's rescaling) per warp and merges its four
// warps; with one chunk it writes the output, with several it writes (m, l, unnormalised o) and the
// chunk that finishes last merges them all (a counter per (query, head): no second launch).
// Lane i of a warp owns elements i, i + 32, ... of the head (kEpl of them), so any head_dim <= 256
// works and a key row is read with coalesced loads; a warp loads the K and V rows of several keys
// before using any of them, so that many loads are in flight (decode reads the cache at HBM speed
// only with enough of them).
#include <cfloat>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {

namespace {

constexpr int kWarps = 4;

// Keys a warp loads at once: kEpl * kKeys bf16 of K and of V per lane in registers.
template <int kEpl>
constexpr int keys_per_step() { return kEpl <= 4 ? 8 : 4; }

// One warp's pass over keys [j0, end) stepping by kWarps * keys per step: the generic layout (lane i
// owns elements i, i + 32, ... of the head; any head_dim). Leaves the warp's max in m, its sum in l
// and its unnormalised output in so[e] (e < hd).
template <int kEpl>
__device__ inline void warp_keys_strided(const AttentionParams& p, const bf16* q_row, const bf16* k_base,
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
#pragma unroll
      for (int i = 0; i < kEpl; ++i) {
        const int64_t e = lane + 32 * i;
        const bool ok = j0 + g < end && e < hd;
        kr[g][i] = ok ? k_base[(j0 + g) * hd + e] : zero;
        vr[g][i] = ok ? v_base[(j0 + g) * hd + e] : zero;
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

// The same pass for head_dim == kHd in {64, 128, 256}: a key row is kHd / 8 lanes of 16-byte loads,
// so one load instruction covers 32 / (kHd / 8) keys and a lane keeps kLoads of them in flight (K and
// V): FlashInfer's decode layout. Every lane ends with the warp's m and l; so[e] as above.
template <int kHd>
__device__ inline void warp_keys_wide(const AttentionParams& p, const bf16* q_row, const bf16* k_base,
                                      const bf16* v_base, int64_t j_first, int64_t end, int lane, float& m, float& l,
                                      float* so) {
  constexpr int kLanes = kHd / 8;           // lanes per key row
  constexpr int kPerLoad = 32 / kLanes;     // keys per load instruction
  constexpr int kLoads = kHd <= 128 ? 4 : 8;
  constexpr int kStep = kPerLoad * kLoads;  // keys per warp step
  const int sub = lane / kLanes, part = lane % kLanes;
  float q[8], acc[8];
  bf16x8_to_float(reinterpret_cast<const uint4*>(q_row)[part], q);
#pragma unroll
  for (int t = 0; t < 8; ++t) q[t] *= p.scale, acc[t] = 0.f;
  float l_lane = 0.f;  // this lane's keys' share of l (summed over the subs at the end)
  for (int64_t j0 = j_first; j0 < end; j0 += kWarps * kStep) {
    uint4 kv[kLoads], vv[kLoads];
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const int64_t j = j0 + i * kPerLoad + sub;
      kv[i] = j < end ? reinterpret_cast<const uint4*>(k_base + j * kHd)[part] : make_uint4(0, 0, 0, 0);
      vv[i] = j < end ? reinterpret_cast<const uint4*>(v_base + j * kHd)[part] : make_uint4(0, 0, 0, 0);
    }
    float sc[kLoads];
    float m_new = m;
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      float kf[8];
      bf16x8_to_float(kv[i], kf);
      float d = 0.f;
#pragma unroll
      for (int t = 0; t < 8; ++t) d = fmaf(q[t], kf[t], d);
      for (int o = kLanes / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
      sc[i] = j0 + i * kPerLoad + sub < end ? d : -FLT_MAX;
      m_new = fmaxf(m_new, sc[i]);
    }
    for (int o = kLanes; o < 32; o <<= 1) m_new = fmaxf(m_new, __shfl_xor_sync(0xffffffffu, m_new, o));
    const float correction = __expf(m - m_new);
    l_lane *= correction;
#pragma unroll
    for (int t = 0; t < 8; ++t) acc[t] *= correction;
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const float w = sc[i] == -FLT_MAX ? 0.f : __expf(sc[i] - m_new);
      l_lane += w;  // each part-lane of the key adds it once; the sum over subs below counts every key once
      float vf[8];
      bf16x8_to_float(vv[i], vf);
#pragma unroll
      for (int t = 0; t < 8; ++t) acc[t] = fmaf(w, vf[t], acc[t]);
    }
    m = m_new;
  }
  // Sum over the subs (lanes with the same part hold the same elements of different keys).
  for (int o = kLanes; o < 32; o <<= 1) {
    l_lane += __shfl_xor_sync(0xffffffffu, l_lane, o);
#pragma unroll
    for (int t = 0; t < 8; ++t) acc[t] += __shfl_xor_sync(0xffffffffu, acc[t], o);
  }
  l = l_lane;
  if (sub == 0)
#pragma unroll
    for (int t = 0; t < 8; ++t) so[part * 8 + t] = acc[t];
}

// kWide: head_dim == 32 * kEpl in {64, 128, 256} (warp_keys_wide), else warp_keys_strided.
template <int kEpl, bool kWide>
__global__ void attention_partial_kernel(AttentionParams p) {
  pdl_wait();
  pdl_trigger();
  const int64_t qh = blockIdx.x;  // query * heads + head
  const int64_t t = qh / p.heads, h = qh % p.heads;
  const int64_t kvh = h / (p.heads / p.kv_heads);
  const int split = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t hd = p.hd;
  const int64_t pos = int64_t(*p.pos0) + t;
  const int64_t first = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;
  const int64_t count = pos - first + 1;
  const int64_t chunk = (count + p.splits - 1) / p.splits;
  const int64_t begin = first + split * chunk;
  const int64_t end = begin + chunk < pos + 1 ? begin + chunk : pos + 1;

  __shared__ float sm[kWarps], sl[kWarps];
  __shared__ float so[kWarps][kEpl * 32];
  const bf16* q_row = p.q + qh * hd;
  const bf16* k_base = p.k_cache + kvh * p.capacity * hd;
  const bf16* v_base = p.v_cache + kvh * p.capacity * hd;
  float m = -FLT_MAX, l = 0.f;
  if constexpr (kWide) {
    constexpr int kStep = (32 / (kEpl * 4)) * (kEpl <= 4 ? 4 : 8);
    warp_keys_wide<32 * kEpl>(p, q_row, k_base, v_base, begin + warp * kStep, end, lane, m, l, so[warp]);
  } else {
    warp_keys_strided<kEpl>(p, q_row, k_base, v_base, begin + warp * keys_per_step<kEpl>(), end, lane, m, l, so[warp]);
  }
  if (lane == 0) sm[warp] = m, sl[warp] = l;
  __syncthreads();
  // Merge the warps.
  if (warp != 0) return;
  float mm = -FLT_MAX;
  for (int w = 0; w < kWarps; ++w) mm = fmaxf(mm, sm[w]);
  float ll = 0.f;
  for (int w = 0; w < kWarps; ++w) ll += sl[w] > 0.f ? sl[w] * __expf(sm[w] - mm) : 0.f;
  float o[kEpl];
#pragma unroll
  for (int i = 0; i < kEpl; ++i) {
    const int64_t e = lane + 32 * i;
    o[i] = 0.f;
    if (e < hd)
      for (int w = 0; w < kWarps; ++w)
        if (sl[w] > 0.f) o[i] += so[w][e] * __expf(sm[w] - mm);
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
#pragma unroll 4
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

void launch_attention(const AttentionParams& p, cudaStream_t stream) {
  CTX_CHECK(p.hd <= 256 && p.heads % p.kv_heads == 0 && p.splits >= 1, "attention shape");
  const dim3 grid(unsigned(p.n * p.heads), unsigned(p.splits));
  const int epl = int((p.hd + 31) / 32);
  switch (epl) {
#define CTX_ATTN_CASE(E)                                                                   \
  case E:                                                                                  \
    if (p.vectorized && p.hd == 32 * E && (E == 2 || E == 4 || E == 8)) {                  \
      launch_pdl(attention_partial_kernel<E, (E == 2 || E == 4 || E == 8)>, grid, dim3(32 * kWarps), 0, stream, p); \
    } else {                                                                               \
      launch_pdl(attention_partial_kernel<E, false>, grid, dim3(32 * kWarps), 0, stream, p); \
    }                                                                                      \
    break;
    CTX_ATTN_CASE(1) CTX_ATTN_CASE(2) CTX_ATTN_CASE(3) CTX_ATTN_CASE(4)
    CTX_ATTN_CASE(5) CTX_ATTN_CASE(6) CTX_ATTN_CASE(7) CTX_ATTN_CASE(8)
#undef CTX_ATTN_CASE
  }
}

}  // namespace ctx::cuda
