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

template <int kEpl>
__global__ void attention_partial_kernel(AttentionParams p) {
  pdl_wait();
  pdl_trigger();
  constexpr int kKeys = keys_per_step<kEpl>();
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

  float q[kEpl], acc[kEpl];
  const bf16* q_row = p.q + qh * hd;
#pragma unroll
  for (int i = 0; i < kEpl; ++i) {
    const int64_t e = lane + 32 * i;
    q[i] = e < hd ? __bfloat162float(q_row[e]) * p.scale : 0.f;
    acc[i] = 0.f;
  }
  float m = -FLT_MAX, l = 0.f;
  const bf16* k_base = p.k_cache + kvh * p.capacity * hd;
  const bf16* v_base = p.v_cache + kvh * p.capacity * hd;
  const bf16 zero = __float2bfloat16(0.f);
  // Warp w takes keys [j0, j0 + kKeys) for j0 = begin + w * kKeys, then strides by kWarps * kKeys.
  for (int64_t j0 = begin + warp * kKeys; j0 < end; j0 += kWarps * kKeys) {
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
    float s[kKeys];
    float m_new = m;
#pragma unroll
    for (int g = 0; g < kKeys; ++g) {
      float d = 0.f;
#pragma unroll
      for (int i = 0; i < kEpl; ++i) d = fmaf(q[i], __bfloat162float(kr[g][i]), d);
      s[g] = warp_sum(d);
      if (j0 + g < end) m_new = fmaxf(m_new, s[g]);
    }
    const float correction = __expf(m - m_new);
    l *= correction;
#pragma unroll
    for (int i = 0; i < kEpl; ++i) acc[i] *= correction;
#pragma unroll
    for (int g = 0; g < kKeys; ++g) {
      if (j0 + g >= end) break;
      const float w = __expf(s[g] - m_new);
      l += w;
#pragma unroll
      for (int i = 0; i < kEpl; ++i) acc[i] = fmaf(w, __bfloat162float(vr[g][i]), acc[i]);
    }
    m = m_new;
  }
  // Merge the warps.
  __shared__ float sm[kWarps], sl[kWarps];
  __shared__ float so[kWarps][kEpl * 32];
  if (lane == 0) sm[warp] = m, sl[warp] = l;
#pragma unroll
  for (int i = 0; i < kEpl; ++i) so[warp][lane + 32 * i] = acc[i];
  __syncthreads();
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
  const float* part = p.partial + qh * p.splits * (hd + 2);
  float gm = -FLT_MAX;
  for (int s = 0; s < p.splits; ++s)
    if (__ldcg(part + s * (hd + 2) + 1) > 0.f) gm = fmaxf(gm, __ldcg(part + s * (hd + 2)));
  float num[kEpl], den = 0.f;
#pragma unroll
  for (int i = 0; i < kEpl; ++i) num[i] = 0.f;
  for (int s = 0; s < p.splits; ++s) {
    const float* ps = part + s * (hd + 2);
    const float ls = __ldcg(ps + 1);
    if (ls <= 0.f) continue;  // an empty chunk
    const float f = __expf(__ldcg(ps) - gm);
    den += ls * f;
#pragma unroll
    for (int i = 0; i < kEpl; ++i)
      if (lane + 32 * i < hd) num[i] += __ldcg(ps + 2 + lane + 32 * i) * f;
  }
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
#define CTX_ATTN_CASE(E) \
  case E:                \
    launch_pdl(attention_partial_kernel<E>, grid, dim3(32 * kWarps), 0, stream, p); \
    break;
    CTX_ATTN_CASE(1) CTX_ATTN_CASE(2) CTX_ATTN_CASE(3) CTX_ATTN_CASE(4)
    CTX_ATTN_CASE(5) CTX_ATTN_CASE(6) CTX_ATTN_CASE(7) CTX_ATTN_CASE(8)
#undef CTX_ATTN_CASE
  }
}

}  // namespace ctx::cuda
