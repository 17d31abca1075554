// Decode attention on tensor cores (internal to core/cuda/kernels): one warp's online softmax over
// 16 keys at a time with mma.sync m16n8k16, for the kG <= 4 query heads of a block that share one
// KV head (GQA: each K/V byte is loaded once, by one lane, for all of them) and head_dim kHd 64 or
// 128. Sources (the bf16 cache here: mma_pass_bf16; KIVI codes in kivi_attention.cu) feed the same
// state, MmaSoftmax, so that a KIVI block folds its quantized keys and its bf16 rest into one
// softmax. Compared with the CUDA-core pass (WideSoftmax) no dot product is summed over lanes by
// shuffles and each (key, head) pair pays one exp, not one per lane: the pass stays bound by memory
// with 4 heads per block (the CUDA-core pass is bound by instructions there).
//
// Lane roles (g = lane / 4, t = lane % 4; fragment layouts in mma_sm80.cuh):
//   S = Q K^T, one mma tile per 8 keys j0 + 8n .. + 7: A = the query heads (rows g < kG, rows >= kG
//     and g + 8 zero), B = K^T: lane (g, t) loads key j0 + 8n + g, its part of the head dimension
//     (which physical dims a logical k index stands for is the source's choice: the query's A
//     fragment uses the same), and gets S[head g][keys 2t, 2t + 1].
//   O^T += V^T P^T (the transposed product, so that P needs no transpose: S's accumulators of head g
//     and keys 2t, 2t + 1 are exactly P^T's B fragment): A = V^T, one tile per 16 dims; lane g owns
//     the kHd / 8 dims g * kHd / 8 .. + kHd / 8 - 1 (tile i's logical rows g and g + 8 are its dims
//     2i and 2i + 1) of keys 2t, 2t + 1, 2t + 8, 2t + 9; the accumulators o[i] hold O[heads 2t, 2t + 1]
//     at those two dims. For the bf16 cache P goes in as a high and a low part (two mmas), so the
//     weights keep float32 precision although the mma takes 16-bit inputs; KIVI's codes take P in
//     fp16 (one mma: accumulate_high), their quantization error being far larger than 2^-11.
#pragma once

#include <cfloat>
#include <cuda_fp16.h>

#include "core/cuda/kernels/attention_pass.cuh"
#include "core/cuda/kernels/mma_sm80.cuh"

namespace ctx::cuda {
namespace attention {

// The 16-bit type of a source's mma (bf16 cache, fp16 dequantized codes).
struct Bf16Mma {
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma::mma_bf16_16816(d, a, b0, b1);
  }
  __device__ static uint32_t pack(float lo, float hi) { return mma::pack_bf16(lo, hi); }
  __device__ static float2 unpack(uint32_t x) { return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&x)); }
};
struct F16Mma {
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    mma::mma_f16_16816(d, a, b0, b1);
  }
  __device__ static uint32_t pack(float lo, float hi) { return mma::pack_f16(lo, hi); }
  __device__ static float2 unpack(uint32_t x) { return __half22float2(*reinterpret_cast<const __half2*>(&x)); }
};

// Keys per step of the tensor-core pass (two S tiles, one k16 step of P.V).
constexpr int kMmaKeys = 16;

template <int kHd, int kG>
struct MmaSoftmax {
  static_assert(kHd == 64 || kHd == 128, "tensor-core decode: head_dim 64 or 128");
  static_assert(kG >= 1 && kG <= 4, "query heads per block");
  static constexpr int kTiles = kHd / 16;        // O^T tiles of 16 dims
  static constexpr int kDimsPerLane = kHd / 8;   // the dims lane g owns in V and O
  int g, t;
  float o[kTiles][4];
  float m, l;  // head g's running max (scaled scores) and this lane's share of its sum
  float scale;

  __device__ MmaSoftmax(float scale_, int lane) : g(lane >> 2), t(lane & 3), m(-FLT_MAX), l(0.f), scale(scale_) {
#pragma unroll
    for (int i = 0; i < kTiles; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  }

  // Folds 8 kN keys' raw scores into the softmax (kN = 2: one step of kMmaKeys; KIVI tiles take 4):
  // s[n][i] = q_g . k of key j0 + 8n + 2t + i (keys >= end and heads >= kG are masked), rescales o
  // and returns P^T's B fragments (keys 2t, 2t + 1 of each 8, head g) as a high and (kLow) a low
  // part in Mma's type (without kLow p_lo is left as it is: accumulate_high takes P rounded to Mma's type).
  template <class Mma, int kN, bool kLow = true>
  __device__ void update(const float (&s)[kN][2], int64_t j0, int64_t end, uint32_t (&p_hi)[kN], uint32_t (&p_lo)[kN]) {
    float x[kN][2], mx = m;
#pragma unroll
    for (int n = 0; n < kN; ++n)
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const bool valid = g < kG && j0 + 8 * n + 2 * t + i < end;
        x[n][i] = valid ? s[n][i] * scale : -INFINITY;
        mx = fmaxf(mx, x[n][i]);
      }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float correction = __expf(m - mx);
    m = mx;
    l *= correction;
#pragma unroll
    for (int n = 0; n < kN; ++n) {
      const float p0 = __expf(x[n][0] - mx), p1 = __expf(x[n][1] - mx);
      l += p0 + p1;
      p_hi[n] = Mma::pack(p0, p1);
      if constexpr (kLow) {
        const float2 h = Mma::unpack(p_hi[n]);
        p_lo[n] = Mma::pack(p0 - h.x, p1 - h.y);
      }
    }
    // o holds heads 2t and 2t + 1: their corrections from lanes 8t and 8t + 4 (g = 2t, 2t + 1).
    const float c0 = __shfl_sync(0xffffffffu, correction, 8 * t);
    const float c1 = __shfl_sync(0xffffffffu, correction, 8 * t + 4);
#pragma unroll
    for (int i = 0; i < kTiles; ++i) o[i][0] *= c0, o[i][1] *= c1, o[i][2] *= c0, o[i][3] *= c1;
  }

  // o[i] += V^T tile i (a: the source's A fragment) times P^T (high and low parts).
  template <class Mma>
  __device__ void accumulate(int i, const uint32_t (&a)[4], const uint32_t (&p_hi)[2], const uint32_t (&p_lo)[2]) {
    Mma::mma(o[i], a, p_hi[0], p_hi[1]);
    Mma::mma(o[i], a, p_lo[0], p_lo[1]);
  }
  // The same with P rounded to Mma's type (relative error 2^-11 in fp16): one mma.
  template <class Mma>
  __device__ void accumulate_high(int i, const uint32_t (&a)[4], const uint32_t (&p_hi)[2]) {
    Mma::mma(o[i], a, p_hi[0], p_hi[1]);
  }

  // Every lane gets the warp's m_out[h] and l_out[h]; so[h * kHd + e] = its unnormalised output
  // (WideSoftmax::finish's contract, for finish_block).
  __device__ void finish(float (&m_out)[kG], float (&l_out)[kG], float* so) {
    float sum = l + __shfl_xor_sync(0xffffffffu, l, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
#pragma unroll
    for (int h = 0; h < kG; ++h) {
      m_out[h] = __shfl_sync(0xffffffffu, m, 4 * h);
      l_out[h] = __shfl_sync(0xffffffffu, sum, 4 * h);
    }
#pragma unroll
    for (int i = 0; i < kTiles; ++i)
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int head = 2 * t + hh;
        if (head < kG) {
          so[head * kHd + g * kDimsPerLane + 2 * i] = o[i][hh];
          so[head * kHd + g * kDimsPerLane + 2 * i + 1] = o[i][2 + hh];
        }
      }
  }
};

__device__ inline uint32_t word(const uint4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// The bf16 source over keys [j_begin, j_end) (any alignment; keys past j_end are masked), K and V
// rows at rows(j) from k_base and v_base, the kG query rows one after another at q_rows.
// S: lane t owns the 16-byte chunks t, t + 4, ... of a key row (8 dims each: k step s takes words
// 2 (s % 2) and 2 (s % 2) + 1 of chunk t + 4 (s / 2)), and of the query rows alike.
// V: lane g's kHd / 8 dims are 2 or 1 chunks; tile i pairs word i of keys (2t, 2t + 1) and of
// (2t + 8, 2t + 9) by prmt into (key, key) registers: dims 2i (low halves) and 2i + 1 (high).
// kPrefetch: the next step's K/V are loaded before this step's are used (two steps of loads in
// flight per warp; 64 more registers). kCoherent: K/V loaded through L2 (ld.global.cg) instead of the
// read-only cache, for a launch that writes a row it then reads (AttentionParams::rope).
template <int kHd, int kG, bool kPrefetch = false, bool kCoherent = false, class Rows>
__device__ inline void mma_pass_bf16(MmaSoftmax<kHd, kG>& st, Rows rows, const bf16* q_rows, const bf16* k_base,
                                     const bf16* v_base, int64_t j_begin, int64_t j_end) {
  if (j_begin >= j_end) return;
  constexpr int kKC = kHd / 32;  // K chunks per lane and key
  constexpr int kVC = kHd / 64;  // V chunks per lane and key
  const int g = st.g, t = st.t;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  uint4 qc[kKC];
#pragma unroll
  for (int c = 0; c < kKC; ++c)
    qc[c] = g < kG ? reinterpret_cast<const uint4*>(q_rows + g * kHd)[t + 4 * c] : zero;
  const auto ld = [](const uint4* p) {
    if constexpr (kCoherent) {
      return __ldcg(p);
    } else {
      return __ldg(p);
    }
  };
  // Keys j0 + 8n + g (K) and j0 + 2t, 2t + 1, 2t + 8, 2t + 9 (V) of a step; zeros past j_end.
  auto load = [&](int64_t j0, uint4 (&kc)[2][kKC], uint4 (&vc)[4][kVC]) {
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      const int64_t j = j0 + 8 * n + g;
      const bf16* kr = j < j_end ? k_base + rows(j) : nullptr;
#pragma unroll
      for (int c = 0; c < kKC; ++c) kc[n][c] = kr ? ld(reinterpret_cast<const uint4*>(kr) + t + 4 * c) : zero;
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int64_t j = j0 + 2 * t + (r & 1) + 8 * (r >> 1);
      const bf16* vr = j < j_end ? v_base + rows(j) + g * (kHd / 8) : nullptr;
#pragma unroll
      for (int c = 0; c < kVC; ++c) vc[r][c] = vr ? ld(reinterpret_cast<const uint4*>(vr) + c) : zero;
    }
  };
  uint4 kc[2][kKC], vc[4][kVC];
  if constexpr (kPrefetch) load(j_begin, kc, vc);
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kMmaKeys) {
    uint4 k_next[2][kKC], v_next[4][kVC];
    if constexpr (kPrefetch) {
      load(j0 + kMmaKeys, k_next, v_next);
    } else {
      load(j0, kc, vc);
    }
    float s[2][4] = {};
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int k = 0; k < kHd / 16; ++k) {
        const int w = 2 * (k % 2);
        const uint32_t a[4] = {word(qc[k / 2], w), 0u, word(qc[k / 2], w + 1), 0u};
        Bf16Mma::mma(s[n], a, word(kc[n][k / 2], w), word(kc[n][k / 2], w + 1));
      }
    const float sc[2][2] = {{s[0][0], s[0][1]}, {s[1][0], s[1][1]}};
    uint32_t p_hi[2], p_lo[2];
    st.template update<Bf16Mma>(sc, j0, j_end, p_hi, p_lo);
#pragma unroll
    for (int i = 0; i < kHd / 16; ++i) {
      const uint32_t x0 = word(vc[0][i / 4], i % 4), x1 = word(vc[1][i / 4], i % 4);
      const uint32_t x2 = word(vc[2][i / 4], i % 4), x3 = word(vc[3][i / 4], i % 4);
      const uint32_t a[4] = {mma::prmt(x0, x1, 0x5410), mma::prmt(x0, x1, 0x7632), mma::prmt(x2, x3, 0x5410),
                             mma::prmt(x2, x3, 0x7632)};
      st.template accumulate<Bf16Mma>(i, a, p_hi, p_lo);
    }
    if constexpr (kPrefetch) {
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int c = 0; c < kKC; ++c) kc[n][c] = k_next[n][c];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < kVC; ++c) vc[r][c] = v_next[r][c];
    }
  }
}

// The keys [begin, end) of warp `warp` when a block's keys are shared out as contiguous runs of
// whole steps of `step` keys.
__device__ inline void warp_run(int64_t begin, int64_t end, int warp, int64_t step, int64_t& j0, int64_t& j1) {
  const int64_t count = end > begin ? end - begin : 0;
  const int64_t per_warp = (count + kWarps * step - 1) / (kWarps * step) * step;
  j0 = begin + warp * per_warp < end ? begin + warp * per_warp : end;
  j1 = j0 + per_warp < end ? j0 + per_warp : end;
}

}  // namespace attention
}  // namespace ctx::cuda
