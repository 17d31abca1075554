// Causal attention over the bf16 KV cache, split-KV (kernels.h): a partial pass per (query, head,
// chunk of keys) keeps an online max and sum (FlashAttention's rescaling) per warp, merges its four
// warps and writes (m, l, unnormalised o); the combine pass merges the chunks of each (query, head).
// Lane i of a warp owns elements i, i + 32, ... of the head (kEpl of them), so any head_dim <= 256
// works and a key row is read with coalesced loads.
#include <cfloat>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

namespace {

constexpr int kWarps = 4;

template <int kEpl>
__global__ void attention_partial_kernel(AttentionParams p) {
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
  for (int64_t j = begin + warp; j < end; j += kWarps) {
    const bf16* k_row = k_base + j * hd;
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < kEpl; ++i) {
      const int64_t e = lane + 32 * i;
      if (e < hd) s = fmaf(q[i], __bfloat162float(k_row[e]), s);
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const float m_new = fmaxf(m, s);
    const float correction = __expf(m - m_new);
    const float w = __expf(s - m_new);
    l = l * correction + w;
    const bf16* v_row = v_base + j * hd;
#pragma unroll
    for (int i = 0; i < kEpl; ++i) {
      const int64_t e = lane + 32 * i;
      acc[i] = acc[i] * correction + (e < hd ? w * __bfloat162float(v_row[e]) : 0.f);
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
  float* out = p.partial + (qh * p.splits + split) * (hd + 2);
  if (lane == 0) out[0] = mm, out[1] = ll;
#pragma unroll
  for (int i = 0; i < kEpl; ++i) {
    const int64_t e = lane + 32 * i;
    if (e >= hd) continue;
    float o = 0.f;
    for (int w = 0; w < kWarps; ++w)
      if (sl[w] > 0.f) o += so[w][e] * __expf(sm[w] - mm);
    out[2 + e] = o;
  }
}

// grid n * heads, block hd (rounded to warps).
__global__ void attention_combine_kernel(AttentionParams p) {
  const int64_t qh = blockIdx.x, e = threadIdx.x, hd = p.hd;
  if (e >= hd) return;
  const float* part = p.partial + qh * p.splits * (hd + 2);
  float mm = -FLT_MAX;
  for (int s = 0; s < p.splits; ++s)
    if (part[s * (hd + 2) + 1] > 0.f) mm = fmaxf(mm, part[s * (hd + 2)]);
  float num = 0.f, den = 0.f;
  for (int s = 0; s < p.splits; ++s) {
    const float* ps = part + s * (hd + 2);
    if (ps[1] <= 0.f) continue;  // an empty chunk
    const float f = __expf(ps[0] - mm);
    num += ps[2 + e] * f;
    den += ps[1] * f;
  }
  p.out[qh * hd + e] = __float2bfloat16(num / den);
}

}  // namespace

void launch_attention(const AttentionParams& p, cudaStream_t stream) {
  CTX_CHECK(p.hd <= 256 && p.heads % p.kv_heads == 0 && p.splits >= 1, "attention shape");
  const dim3 grid(unsigned(p.n * p.heads), unsigned(p.splits));
  const int epl = int((p.hd + 31) / 32);
  switch (epl) {
#define CTX_ATTN_CASE(E) \
  case E:                \
    attention_partial_kernel<E><<<grid, 32 * kWarps, 0, stream>>>(p); \
    break;
    CTX_ATTN_CASE(1) CTX_ATTN_CASE(2) CTX_ATTN_CASE(3) CTX_ATTN_CASE(4)
    CTX_ATTN_CASE(5) CTX_ATTN_CASE(6) CTX_ATTN_CASE(7) CTX_ATTN_CASE(8)
#undef CTX_ATTN_CASE
  }
  CTX_CUDA_CHECK_LAUNCH();
  attention_combine_kernel<<<unsigned(p.n * p.heads), unsigned((p.hd + 31) / 32 * 32), 0, stream>>>(p);
  CTX_CUDA_CHECK_LAUNCH();
}

}  // namespace ctx::cuda
