// Decode attention over a KIVI-quantized prefix and the bf16 rest of the cache in one launch
// (kivi_kernels.h), built from the bf16 kernel's pieces (attention_pass.cuh): the same block
// layout, online softmax, warp merge and split-KV combine.
//
// Wide path (head_dim 64/128/256, 4 or 8 bits): chunks are whole tiles of kivi_tile keys (aligned
// to position 0), so a tile never straddles a key group; the block's quantized tiles are shared out
// to its warps as contiguous runs, so that a warp folds the query into a group's key params
// (qs_d = q_d * scale_d, qm = sum_d q_d * min_d) once per group it enters. Lane `part` loads the 8
// codes of its channels of a row (4 bytes at 4 bits, 8 at 8: one 64- or 128-byte row per kHd / 8
// lanes, coalesced as the bf16 kernel's 16-byte loads) and its channel block's value (min, scale):
//   score = sum_d qs_d code_d + qm,   o_d += (w scale) code_d, and sum w min once per block.
// The bf16 keys of the chunk (>= qlen) then go through wide_pass_bf16 on the same state, read
// through the ring of the newest positions when there is one (RingRows; kernels.h: KiviKv::ring).
// Generic path: warp_keys_strided with elements dequantized one by one (any head_dim, 2 bits).
// Tensor-core path (head_dim 64/128, 4 or 8 bits, groups of a multiple of 32 keys; the default
// with several query heads per block, and at 4 bits and head_dim 128 for one head too):
// mma_pass_kivi below (at 4 bits mma_pass_kivi_staged: the code tiles through a per-warp cp.async
// ring in shared memory) and attention_mma.cuh's bf16 pass for the rest, on one MmaSoftmax.
#include <algorithm>
#include <type_traits>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/attention_mma.cuh"
#include "core/cuda/kernels/attention_pass.cuh"
#include "core/cuda/kernels/gemv_common.cuh"
#include "core/cuda/kernels/kivi_kernels.h"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {
namespace {

using namespace attention;

// Where key j's bf16 row lives in its (sequence, KV head)'s ring of `ring` rows (the capacity when
// there is no ring: then j % ring == j), from the head's base: contiguous, or paged (paged.table set:
// the sequence's row of the block table, ring row r in block table[r >> shift]; kivi_kernels.h
// KiviBf16Rows). Only the few keys past the quantized prefix pay the modulo and the table read.
struct RingRows {
  int64_t hd, ring;
  PagedRows paged;
  __device__ int64_t operator()(int64_t j) const {
    const int64_t r = j % ring;
    return paged.table ? paged(r) : r * hd;
  }
};

// One (sequence, KV head)'s quantized rows (kernels.h: KiviKv).
struct KiviHead {
  const uint8_t *k_codes, *v_codes;
  const KiviParam *k_params, *v_params;  // fp16 (min, scale)
  int64_t group, row_bytes, value_blocks;
};

// A 32-bit word holding one KiviParam, as floats (min, scale).
__device__ inline float2 param_float2(uint32_t w) { return __half22float2(*reinterpret_cast<const __half2*>(&w)); }

// A code as a float: 2^23 + c has c in its mantissa bits (exact for c < 2^23).
__device__ inline float code_float(uint32_t c) { return __uint_as_float(0x4B000000u | c) - 8388608.f; }

// The 8 codes of kBits bits a lane loads (little-endian: code t at bit t * kBits).
template <int kBits>
using CodeWord = std::conditional_t<kBits == 8, uint2, uint32_t>;
template <int kBits>
__device__ inline void unpack8(CodeWord<kBits> w, float (&c)[8]) {
  if constexpr (kBits == 8) {
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      c[t] = code_float((w.x >> (8 * t)) & 0xffu);
      c[t + 4] = code_float((w.y >> (8 * t)) & 0xffu);
    }
  } else {
    static_assert(kBits == 4);
#pragma unroll
    for (int t = 0; t < 8; ++t) c[t] = code_float((w >> (4 * t)) & 0xfu);
  }
}

// The wide pass over whole tiles [j_begin, j_end) of quantized keys (see the top of the file).
template <int kHd, int kG, int kBits>
__device__ inline void wide_pass_kivi(WideSoftmax<kHd, kG>& s, const KiviHead& h, int64_t j_begin, int64_t j_end) {
  using Word = CodeWord<kBits>;
  constexpr int kPerLoad = WideSoftmax<kHd, kG>::kPerLoad;
  constexpr int kLoads = kivi_loads(kHd, kG);
  constexpr int kTile = kivi_tile(kHd, kG);
  constexpr int64_t kRowBytes = kHd * kBits / 8;
  const int64_t vblock = s.part * 8 / h.group;  // the value block of this lane's 8 channels
  // kFold: the query folded into the group's scales, qs[g][t] = q_t scale_t (one FMA per code and
  // head); 4 heads keep only the scales, qs[0][t] = scale_t (one more multiply per code), as 32
  // more registers would limit the blocks per SM.
  constexpr bool kFold = kG < 4;
  constexpr int kQs = kFold ? kG : 1;
  float qs[kQs][8], qm[kG], accm[kG];
#pragma unroll
  for (int g = 0; g < kG; ++g) qm[g] = accm[g] = 0.f;
#pragma unroll
  for (int g = 0; g < kQs; ++g)
#pragma unroll
    for (int t = 0; t < 8; ++t) qs[g][t] = 0.f;
  int64_t folded = -1;  // the key group qs and qm belong to
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kTile) {
    Word kw[kLoads], vw[kLoads];
    float2 vp[kLoads];
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      const int64_t j = j0 + i * kPerLoad + s.sub;
      kw[i] = reinterpret_cast<const Word*>(h.k_codes + j * kRowBytes)[s.part];
      vw[i] = reinterpret_cast<const Word*>(h.v_codes + j * kRowBytes)[s.part];
      vp[i] = __half22float2(h.v_params[j * h.value_blocks + vblock]);
    }
    const int64_t G = j0 / h.group;  // warp-uniform: the shuffles below see every lane
    if (G != folded) {
      folded = G;
      const uint4* kp = reinterpret_cast<const uint4*>(h.k_params + G * kHd + s.part * 8);  // 8 params, 32 bytes
      float mn[8], sc[8];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint4 x = kp[i];
        const uint32_t w[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = param_float2(w[e]);
          mn[4 * i + e] = f.x, sc[4 * i + e] = f.y;
        }
      }
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        float d = 0.f;
#pragma unroll
        for (int t = 0; t < 8; ++t) {
          if constexpr (kFold) qs[g][t] = s.q[g][t] * sc[t];
          d = fmaf(s.q[g][t], mn[t], d);
        }
        qm[g] = s.row_sum(d);
      }
      if constexpr (!kFold)
#pragma unroll
        for (int t = 0; t < 8; ++t) qs[0][t] = sc[t];
    }
    float score[kG][kLoads], correction[kG];
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      float c[8];
      unpack8<kBits>(kw[i], c);
      if constexpr (!kFold)
#pragma unroll
        for (int t = 0; t < 8; ++t) c[t] *= qs[0][t];
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        float d = 0.f;
#pragma unroll
        for (int t = 0; t < 8; ++t) d = fmaf(kFold ? qs[g][t] : s.q[g][t], c[t], d);
        score[g][i] = s.row_sum(d) + qm[g];
      }
    }
    s.rescale(score, correction);
#pragma unroll
    for (int g = 0; g < kG; ++g) accm[g] *= correction[g];
#pragma unroll
    for (int i = 0; i < kLoads; ++i) {
      float c[8];
      unpack8<kBits>(vw[i], c);
#pragma unroll
      for (int g = 0; g < kG; ++g) {
        const float w = s.weight(score[g][i], g), ws = w * vp[i].y;
        accm[g] = fmaf(w, vp[i].x, accm[g]);
#pragma unroll
        for (int t = 0; t < 8; ++t) s.acc[g][t] = fmaf(ws, c[t], s.acc[g][t]);
      }
    }
  }
#pragma unroll
  for (int g = 0; g < kG; ++g)
#pragma unroll
    for (int t = 0; t < 8; ++t) s.acc[g][t] += accm[g];
}

// The tensor-core pass (attention_mma.cuh's lane roles) over whole tiles [j_begin, j_end) of
// kKiviMmaTile quantized keys (one key group or part of one: groups are multiples of the tile). The
// query's fp16 A fragments are kept once per pass in shared memory; per key group they are folded
// into the keys' params (A = fp16(q_d scale_d) in the order of the codes' dims, one fp16 multiply
// per pair; qm = sum_d q_d min_d on the tensor cores), so that S = A . codes + qm runs on the codes
// as exact fp16 integers. Codes become fp16 by placing them in the mantissa of 1024 (one lop3 for
// nibbles, prmt for bytes) and subtracting 1024; values are then dequantized per (key, value block)
// with one fp16 FMA (lane g's dims lie in one value block). A tile's 32 scores make one softmax
// update, and P goes into P.V in fp16. A lane's shared-memory reads and copies are its offsets plus
// constants (KiviSlot::Lane) and key groups are walked without divisions (GroupWalk). (Codes kept
// biased by 1024 for one head, with the value params in P^T's idle columns, measured no faster:
// bench/RESULTS.md eighth session.)
constexpr int kKiviMmaTile = 32;

__device__ inline uint32_t h2_sub(uint32_t a, uint32_t b) {
  const __half2 r = __hsub2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
  return *reinterpret_cast<const uint32_t*>(&r);
}
__device__ inline uint32_t h2_fma(uint32_t a, uint32_t b, uint32_t c) {
  const __half2 r = __hfma2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b),
                            *reinterpret_cast<const __half2*>(&c));
  return *reinterpret_cast<const uint32_t*>(&r);
}
__device__ inline uint32_t h2_mul(uint32_t a, uint32_t b) {
  const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
  return *reinterpret_cast<const uint32_t*>(&r);
}
constexpr uint32_t kF16x2Of1024 = 0x64006400u;  // fp16 1024 in both halves
__device__ inline uint32_t h2_bits(__half2 x) { return *reinterpret_cast<const uint32_t*>(&x); }

// kN 32-bit words from 4 * kN bytes (aligned to them) with 8- or 16-byte loads.
template <int kN>
__device__ inline void load_words(const uint8_t* p, uint32_t (&w)[kN]) {
  if constexpr (kN % 4 == 0) {
#pragma unroll
    for (int i = 0; i < kN / 4; ++i) {
      const uint4 x = __ldg(reinterpret_cast<const uint4*>(p) + i);
      w[4 * i] = x.x, w[4 * i + 1] = x.y, w[4 * i + 2] = x.z, w[4 * i + 3] = x.w;
    }
  } else if constexpr (kN == 2) {
    const uint2 x = __ldg(reinterpret_cast<const uint2*>(p));
    w[0] = x.x, w[1] = x.y;
  } else {
    static_assert(kN == 1);
    w[0] = __ldg(reinterpret_cast<const uint32_t*>(p));
  }
}

// Codes of kBits bits as mma fragments.
template <int kBits>
struct KiviMmaCodes {
  static_assert(kBits == 4 || kBits == 8);
  static constexpr int kStepsPerWord = kBits == 4 ? 2 : 1;  // k steps (4 dims of a lane) per 32-bit word
  // The dim (within lane t's quarter of the head) of entry j = b0.lo, b0.hi, b1.lo, b1.hi of k step
  // s's B fragment: the query's A fragment (a0, a2) takes the same dims.
  __device__ static constexpr int k_dim(int s, int j) {
    if constexpr (kBits == 4) {
      return 8 * (s / 2) + 2 * (s % 2) + (j == 0 ? 0 : j == 1 ? 4 : j == 2 ? 1 : 5);
    } else {
      return 4 * s + j;
    }
  }
  // k step s's B fragment from lane t's word s / kStepsPerWord of the key row.
  __device__ static void k_fragment(uint32_t w, int s, uint32_t& b0, uint32_t& b1) {
    if constexpr (kBits == 4) {
      const uint32_t x = s % 2 ? w >> 8 : w;
      b0 = h2_sub(mma::and_or<0x000f000fu, kF16x2Of1024>(x), kF16x2Of1024);       // nibbles 0, 4 (2, 6)
      b1 = h2_fma(mma::and_or<0x00f000f0u, kF16x2Of1024>(x), 0x2c002c00u, 0xd400d400u);  // 16 c / 16 - 64 of nibbles 1, 5 (3, 7)
    } else {
      b0 = h2_sub(mma::prmt(w, 0x64646464u, 0x4140), kF16x2Of1024);  // bytes 0, 1
      b1 = h2_sub(mma::prmt(w, 0x64646464u, 0x4342), kF16x2Of1024);  // bytes 2, 3
    }
  }
  // V^T tile i's codes of dims 2i (lo) and 2i + 1 (hi) of keys (a, b) as fp16 pairs: lo = (c_a, c_b),
  // hi = (c_a, c_b) times 16 at 4 bits (the caller scales by scale / 16).
  template <int kW>
  __device__ static void v_codes(const uint32_t (&wa)[kW], const uint32_t (&wb)[kW], int i, uint32_t& lo, uint32_t& hi) {
    if constexpr (kBits == 4) {  // byte i holds dims 2i (low nibble) and 2i + 1
      const uint32_t k = uint32_t(i % 4);
      const uint32_t x = mma::prmt(wa[i / 4], wb[i / 4], k | (k << 4) | ((4 + k) << 8) | ((4 + k) << 12));
      lo = h2_sub(mma::and_or<0x000f000fu, kF16x2Of1024>(x), kF16x2Of1024);
      hi = h2_sub(mma::and_or<0x00f000f0u, kF16x2Of1024>(x), kF16x2Of1024);
    } else {  // bytes 2i and 2i + 1
      const uint32_t k = uint32_t(2 * (i % 2));
      const uint32_t y = mma::prmt(wa[i / 2], wb[i / 2], k | ((k + 1) << 4) | ((4 + k) << 8) | ((5 + k) << 12));
      lo = h2_sub(mma::prmt(y, 0x64646464u, 0x4240), kF16x2Of1024);
      hi = h2_sub(mma::prmt(y, 0x64646464u, 0x4341), kF16x2Of1024);
    }
  }
};

// P.V of one 16-key half of a tile: vw[r], vp[r] are the codes and value block params of keys 2t,
// 2t + 1, 2t + 8, 2t + 9 of the half (r = 0..3), p P^T's B fragments of its two 8-key tiles.
// P in fp16 (one mma per V tile: the bf16 pass splits P into a high and a low part for float32-precise
// weights; here the codes' quantization error is far larger than fp16's 2^-11).
template <int kHd, int kG, int kBits>
__device__ inline void kivi_pv_half(MmaSoftmax<kHd, kG>& st, const uint32_t (&vw)[4][kHd * kBits / 256],
                                    const KiviParam (&vp)[4], const uint32_t (&p)[2]) {
  using Codes = KiviMmaCodes<kBits>;
  // (scale, min) of the key pairs (2t, 2t + 1) and (2t + 8, 2t + 9); at 4 bits the odd dims' codes come times 16.
  // The params are fp16 already: pairs by byte permutes (mins: low halves, 0x5410; scales: high
  // halves, 0x7632); scale / 16 = fma(scale, 1/16, 0) in fp16 rounds as fp16(float(scale) / 16) did.
  // (__lows2half2 / __highs2half2 / __hmul2 instead measured more registers: ptxas, RESULTS.md kivifp16.)
  const auto pair = [](KiviParam a, KiviParam b, uint32_t sel) { return __byte_perm(h2_bits(a), h2_bits(b), sel); };
  const uint32_t s01 = pair(vp[0], vp[1], 0x7632), m01 = pair(vp[0], vp[1], 0x5410);
  const uint32_t s23 = pair(vp[2], vp[3], 0x7632), m23 = pair(vp[2], vp[3], 0x5410);
  const uint32_t s01h = kBits == 4 ? h2_fma(s01, 0x2c002c00u, 0u) : s01;  // 0x2c00: fp16 1/16
  const uint32_t s23h = kBits == 4 ? h2_fma(s23, 0x2c002c00u, 0u) : s23;
#pragma unroll
  for (int i = 0; i < kHd / 16; ++i) {
    uint32_t lo01, hi01, lo23, hi23;
    Codes::v_codes(vw[0], vw[1], i, lo01, hi01);
    Codes::v_codes(vw[2], vw[3], i, lo23, hi23);
    const uint32_t a[4] = {h2_fma(lo01, s01, m01), h2_fma(hi01, s01h, m01), h2_fma(lo23, s23, m23),
                           h2_fma(hi23, s23h, m23)};
    st.template accumulate_high<F16Mma>(i, a, p);
  }
}

// Words of the query's fp16 A fragments a lane keeps in shared memory (KiviQuery): 2 per k step.
template <int kHd>
constexpr int kKiviQueryWords = kHd / 8;

// Lane (g, t)'s query row as the A fragments (a0, a2) of every k step, fp16 in the order of the
// codes' dims (KiviMmaCodes::k_dim), written once per pass to the lane's words qs[32 w] (w <
// kKiviQueryWords: lane-strided, no bank conflicts); rows g >= kG are zero. bf16 values of magnitude
// 2^-14 .. 65504 are exact in fp16. (Scaling the query by the softmax scale here instead of the
// scores, and no key mask for whole tiles, measured no faster and one more rounding: 85.7-86.0 against
// 84.3 us, worst error 0.0046 against 0.0039; bench/RESULTS.md, seventh session.)
template <int kHd, int kG, int kBits>
__device__ inline void kivi_query_fragments(int g, int t, const bf16* q_rows, uint32_t* qs) {
  using Codes = KiviMmaCodes<kBits>;
  const bf16* qr = q_rows + (g < kG ? g : 0) * kHd + t * (kHd / 4);
#pragma unroll
  for (int s = 0; s < kHd / 16; ++s) {
    float v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = g < kG ? __bfloat162float(qr[Codes::k_dim(s, j)]) : 0.f;
    qs[32 * (2 * s)] = mma::pack_f16(v[0], v[1]), qs[32 * (2 * s + 1)] = mma::pack_f16(v[2], v[3]);
  }
}

// One key group's fold from the query's fragments (kivi_query_fragments' qs): qa[s] = the query
// times the group's key scales (one fp16 multiply per pair, rounded once, as fp16(q_d scale_d)), and
// qm = sum_d q_d min_d by the tensor cores (A = the query, B = the mins in every column: lane (g, t)
// gets head g's sum in d[0], no shuffles). kp: lane t's quarter of the group's KiviParams, two per uint2.
template <int kHd, int kBits, bool kGlobal>
__device__ inline void kivi_fold(const uint32_t* qs, const uint2* kp, uint32_t (&qa)[kHd / 16][2], float& qm) {
  using Codes = KiviMmaCodes<kBits>;
  const auto param = [&](int d) {  // the KiviParam (min low, scale high) of dim d of the quarter
    const uint2 x = kGlobal ? __ldg(kp + d / 2) : kp[d / 2];
    return d % 2 ? x.y : x.x;
  };
  float d[2][4] = {};  // even and odd k steps: two chains of mma
#pragma unroll
  for (int s = 0; s < kHd / 16; ++s) {
    uint32_t q[2], mn[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const uint32_t a = param(Codes::k_dim(s, 2 * r)), b = param(Codes::k_dim(s, 2 * r + 1));
      q[r] = qs[32 * (2 * s + r)];
      qa[s][r] = h2_mul(q[r], mma::prmt(a, b, 0x7632));  // scales: the high halves
      mn[r] = mma::prmt(a, b, 0x5410);                    // mins: the low halves
    }
    const uint32_t a4[4] = {q[0], 0u, q[1], 0u};
    F16Mma::mma(d[s % 2], a4, mn[0], mn[1]);
  }
  qm = d[0][0] + d[1][0];
}

// One tile of kKiviMmaTile keys from j0 into the softmax with one update: the 32 keys' scores first
// (4 independent mma chains of kHd / 16 steps, S = qa . codes; qm added after, so that they need not
// wait for the fold), then one update (one max, one correction of o: a former pass of one per 16
// keys took 0.49x of bf16 for MHA int4 at 32k against 0.45x, bench/RESULTS.md seventh session), then
// P.V of both 16-key halves. The codes come from the sources when needed: kword(n, w) = word w of
// lane (g, t)'s K codes of key j0 + 8n + g (its quarter of the row), vsrc(hf, vw, vp) = the codes
// (its eighth of the row) and value block params of keys 16 hf + 2t, 2t + 1, 2t + 8, 2t + 9
// (shared-memory reads late keep fewer registers live).
template <int kHd, int kG, int kBits, class KWord, class VSource>
__device__ inline void kivi_mma_tile(MmaSoftmax<kHd, kG>& st, const uint32_t (&qa)[kHd / 16][2], float qm,
                                       KWord kword, VSource vsrc, int64_t j0, int64_t j_end) {
  using Codes = KiviMmaCodes<kBits>;
  float s[4][4] = {};
#pragma unroll
  for (int w = 0; w < kHd * kBits / 128; ++w) {
    uint32_t kw[4];
#pragma unroll
    for (int n = 0; n < 4; ++n) kw[n] = kword(n, w);
#pragma unroll
    for (int e = 0; e < Codes::kStepsPerWord; ++e) {
      const int k = w * Codes::kStepsPerWord + e;
      const uint32_t a[4] = {qa[k][0], 0u, qa[k][1], 0u};
#pragma unroll
      for (int n = 0; n < 4; ++n) {
        uint32_t b0, b1;
        Codes::k_fragment(kw[n], k, b0, b1);
        F16Mma::mma(s[n], a, b0, b1);
      }
    }
  }
  const float sc[4][2] = {
      {s[0][0] + qm, s[0][1] + qm}, {s[1][0] + qm, s[1][1] + qm}, {s[2][0] + qm, s[2][1] + qm}, {s[3][0] + qm, s[3][1] + qm}};
  uint32_t p[4], unused[4];
  st.template update<F16Mma, 4, false>(sc, j0, j_end, p, unused);
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    uint32_t vw[4][kHd * kBits / 256];
    KiviParam vp[4];
    vsrc(hf, vw, vp);
    const uint32_t ph[2] = {p[2 * hf], p[2 * hf + 1]};
    kivi_pv_half<kHd, kG, kBits>(st, vw, vp, ph);
  }
}

// The query's side of the tensor-core pass: its fp16 fragments written once per pass to the lane's
// words of shared memory (qs: kKiviQueryWords, 32 apart), then per key group the fold (qa, qm) and
// per tile kivi_mma_tile.
template <int kHd, int kG, int kBits>
struct KiviQuery {
  uint32_t qa[kHd / 16][2];  // a0, a2 of k step s: head g's query times the group's key scales
  float qm = 0.f;            // head g's sum_d q_d min_d over the group's key mins
  const uint32_t* qs;
  __device__ KiviQuery(int g, int t, const bf16* q_rows, uint32_t* qs_) : qs(qs_) {
    kivi_query_fragments<kHd, kG, kBits>(g, t, q_rows, qs_);
  }
  // kp: lane t's quarter of the group's key params (global memory with kGlobal, else shared).
  template <bool kGlobal>
  __device__ void fold(const uint2* kp) {
    kivi_fold<kHd, kBits, kGlobal>(qs, kp, qa, qm);
  }
  template <class KWord, class VSource>
  __device__ void tile(MmaSoftmax<kHd, kG>& st, KWord kword, VSource vsrc, int64_t j0, int64_t j_end) const {
    kivi_mma_tile<kHd, kG, kBits>(st, qa, qm, kword, vsrc, j0, j_end);
  }
};

// The key groups of consecutive tiles from key j_begin (a multiple of kKiviMmaTile), without a
// division per tile: whether the tile starts its group (a tile that is a pass's first folds too) and
// the group's index.
struct GroupWalk {
  int phase, per;  // the tile's index within its group, tiles per group
  int64_t group;
  __device__ GroupWalk(int64_t j_begin, int64_t group_keys)
      : phase(int(j_begin / kKiviMmaTile % (group_keys / kKiviMmaTile))), per(int(group_keys / kKiviMmaTile)),
        group(j_begin / group_keys) {}
  __device__ bool starts() const { return phase == 0; }
  __device__ void next() {
    if (++phase == per) phase = 0, ++group;
  }
};

// The tensor-core pass with a tile's codes loaded into registers at the top of each tile.
template <int kHd, int kG, int kBits>
__device__ inline void mma_pass_kivi(MmaSoftmax<kHd, kG>& st, const KiviHead& h, const bf16* q_rows, int64_t j_begin,
                                     int64_t j_end, uint32_t* qs) {
  constexpr int kKW = kHd * kBits / 128;  // K code words per lane and key (lane t's quarter of the row)
  constexpr int kVW = kHd * kBits / 256;  // V code words per lane and key (lane g's eighth)
  constexpr int64_t kRowBytes = kHd * kBits / 8;
  const int g = st.g, t = st.t;
  using Query = KiviQuery<kHd, kG, kBits>;
  const int64_t vblock = g * (kHd / 8) / h.group;  // the value block of lane g's dims
  Query query(g, t, q_rows, qs);
  GroupWalk folds(j_begin, h.group);
  for (int64_t j0 = j_begin; j0 < j_end; j0 += kKiviMmaTile) {
    uint32_t kw[4][kKW], vw[2][4][kVW];
    KiviParam vp[2][4];
#pragma unroll
    for (int n = 0; n < 4; ++n) load_words(h.k_codes + (j0 + 8 * n + g) * kRowBytes + t * (4 * kKW), kw[n]);
#pragma unroll
    for (int hf = 0; hf < 2; ++hf)
#pragma unroll
      for (int r = 0; r < 4; ++r) {  // keys 2t, 2t + 1, 2t + 8, 2t + 9 of the half
        const int64_t j = j0 + 16 * hf + 2 * t + (r & 1) + 8 * (r >> 1);
        load_words(h.v_codes + j * kRowBytes + g * (4 * kVW), vw[hf][r]);
        vp[hf][r] = __ldg(h.v_params + j * h.value_blocks + vblock);
      }
    if (j0 == j_begin || folds.starts())  // warp-uniform: the fold's mma needs every lane
      query.template fold<true>(reinterpret_cast<const uint2*>(h.k_params + folds.group * kHd + t * (kHd / 4)));
    folds.next();
    const auto kword = [&](int n, int w) { return kw[n][w]; };
    const auto vsrc = [&](int hf, uint32_t (&v)[4][kVW], KiviParam (&p)[4]) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        p[r] = vp[hf][r];
#pragma unroll
        for (int i = 0; i < kVW; ++i) v[r][i] = vw[hf][r][i];
      }
    };
    query.tile(st, kword, vsrc, j0, j_end);
  }
}

// One warp's ring slot: a tile's K codes, V codes (rows of kRowBytes, their 16-byte chunks XOR-
// swizzled by (key / 2) mod chunks, so that the V fragments' 8-key-apart reads fall in fewer shared
// memory banks), the tile's value params (value_blocks <= kHd / 32 KiviParams of 4 bytes per key)
// and the key params of the tile's group (kHd KiviParams; copied only with a tile that starts a
// group, the one that folds them). At head_dim 128, 4 bits: 4096 + 512 + 512 = 5120 bytes.
template <int kHd, int kBits>
struct KiviSlot {
  static constexpr int kRowBytes = kHd * kBits / 8;
  static constexpr int kChunks = kRowBytes / 16;
  static constexpr int kCodeBytes = kKiviMmaTile * kRowBytes;
  static constexpr int kVParams = 2 * kCodeBytes;                          // offset of the value params
  static constexpr int kParam = int(sizeof(KiviParam));
  static constexpr int kKParams = kVParams + kKiviMmaTile * (kHd / 32) * kParam;  // offset of the key params
  static constexpr int kBytes = kKParams + kHd * kParam;
  static_assert(kParam == 4 && kKParams % 16 == 0 && kBytes % 16 == 0);
  static_assert(kChunks >= 2 && (kChunks & (kChunks - 1)) == 0);
  // Byte b of key row k in a code tile.
  __device__ static int at(int k, int b) { return k * kRowBytes + ((((b >> 4) ^ (k >> 1)) & (kChunks - 1)) << 4) + (b & 15); }
  // A lane's offsets in a slot, so that every read and copy of a tile is the lane's offset plus a
  // constant. With at most 4 chunks per row, the swizzle of key 8n + k (k < 8) or 16a + 8b + k is
  // that of k: the constant's key bits lie above the chunk mask after the shift.
  static_assert(kChunks <= 4, "lane offsets: rows of at most 4 chunks (4 bits, head_dim <= 128)");
  static constexpr int kKW = kHd * kBits / 128;  // K code words per lane and key (lane t's quarter)
  static constexpr int kVW = kHd * kBits / 256;  // V code words per lane and key (lane g's eighth)
  struct Lane {
    int k_word;  // word 0 of lane (g, t)'s K codes of key g: key 8n + g's word w is at k_word + 8n rows + 4w
    int v_word;  // lane g's V codes of key 2t: key 2t + d's (d = 0, 1, 8, 9, 16, ...) are d rows further
    int copy;    // the 16-byte chunk lane l copies first: its i-th is 512 i further (32 chunks apart)
  };
  __device__ static Lane lane_offsets(int lane) {
    const int g = lane >> 2, t = lane & 3;
    return {at(g, t * (4 * kKW)), kCodeBytes + at(2 * t, g * (4 * kVW)), at(lane / kChunks, (lane % kChunks) * 16)};
  }
  // Copies the tile of keys j0 .. j0 + kKiviMmaTile - 1 (and with key_params the params of key group `group`).
  __device__ static void issue(uint8_t* slot, const KiviHead& h, int64_t j0, bool key_params, int64_t group,
                               const Lane& o, int lane) {
    const uint8_t* kc = h.k_codes + j0 * kRowBytes + lane * 16;
    const uint8_t* vc = h.v_codes + j0 * kRowBytes + lane * 16;
    const uint32_t dst = mma::smem_addr(slot + o.copy);
#pragma unroll
    for (int i = 0; i < kKiviMmaTile * kChunks / 32; ++i) {
      mma::cp_async_16(dst + 512 * i, kc + 512 * i, 16);
      mma::cp_async_16(dst + kCodeBytes + 512 * i, vc + 512 * i, 16);
    }
    const uint8_t* vp = reinterpret_cast<const uint8_t*>(h.v_params + j0 * h.value_blocks);
    if (lane < kKiviMmaTile * kParam / 16 * int(h.value_blocks))  // value_blocks <= 4: one chunk per lane
      mma::cp_async_16(mma::smem_addr(slot + kVParams + lane * 16), vp + lane * 16, 16);
    if (key_params) {
      const uint8_t* kp = reinterpret_cast<const uint8_t*>(h.k_params + group * kHd);
#pragma unroll
      for (int c = lane; c < kHd * kParam / 16; c += 32) mma::cp_async_16(mma::smem_addr(slot + kKParams + c * 16), kp + c * 16, 16);
    }
  }
};

// The tensor-core pass with the warp's tiles copied by cp.async into its ring of kStages slots
// (`ring`, KiviSlot<kHd, kBits>::kBytes each): kStages - 1 tiles are in flight while one is
// computed from shared memory, without holding registers for them.
template <int kHd, int kG, int kBits, int kStages>
__device__ inline void mma_pass_kivi_staged(MmaSoftmax<kHd, kG>& st, const KiviHead& h, const bf16* q_rows,
                                            int64_t j_begin, int64_t j_end, uint8_t* ring, int lane, uint32_t* qs) {
  using Slot = KiviSlot<kHd, kBits>;
  constexpr int kVW = Slot::kVW;
  const int g = st.g, t = st.t;
  using Query = KiviQuery<kHd, kG, kBits>;
  const int vb = int(h.value_blocks);
  const int vp_lane = 2 * t * vb + int(g * (kHd / 8) / h.group);  // key 2t's value param of lane g's block
  const typename Slot::Lane lo = Slot::lane_offsets(lane);
  const int tiles = int((j_end - j_begin) / kKiviMmaTile);
  // One walk for the copies, one for the folds.
  GroupWalk copies(j_begin, h.group), folds = copies;
  int copy_stage = 0;  // the ring slot of the next tile issued
  const auto issue = [&](int i) {
    if (i < tiles) {
      Slot::issue(ring + copy_stage * Slot::kBytes, h, j_begin + int64_t(i) * kKiviMmaTile, i == 0 || copies.starts(),
                  copies.group, lo, lane);
      copies.next();
    }
    copy_stage = copy_stage + 1 == kStages ? 0 : copy_stage + 1;
    mma::cp_async_commit();  // an empty group past the end keeps the count of pending groups uniform
  };
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) issue(i);
  Query query(g, t, q_rows, qs);
  int stage = 0;  // the ring slot of tile i
  for (int i = 0; i < tiles; ++i) {
    issue(i + kStages - 1);
    mma::cp_async_wait<kStages - 1>();
    __syncwarp();
    const uint8_t* slot = ring + stage * Slot::kBytes;
    stage = stage + 1 == kStages ? 0 : stage + 1;
    if (i == 0 || folds.starts()) query.template fold<false>(reinterpret_cast<const uint2*>(slot + Slot::kKParams) + t * (kHd / 8));
    folds.next();
    // The codes are read from the slot where the tile's maths needs them, at the lane's offsets.
    const auto kword = [&](int n, int w) {
      return *reinterpret_cast<const uint32_t*>(slot + lo.k_word + 8 * n * Slot::kRowBytes + 4 * w);
    };
    const KiviParam* vps = reinterpret_cast<const KiviParam*>(slot + Slot::kVParams) + vp_lane;
    const auto vsrc = [&](int hf, uint32_t (&v)[4][kVW], KiviParam (&p)[4]) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int d = 16 * hf + (r & 1) + 8 * (r >> 1);  // key 2t + d
        const uint8_t* src = slot + lo.v_word + d * Slot::kRowBytes;
        if constexpr (kVW == 2) {
          const uint2 x = *reinterpret_cast<const uint2*>(src);
          v[r][0] = x.x, v[r][1] = x.y;
        } else {
          static_assert(kVW == 1);
          v[r][0] = *reinterpret_cast<const uint32_t*>(src);
        }
        p[r] = vps[d * vb];
      }
    };
    query.tile(st, kword, vsrc, j_begin + int64_t(i) * kKiviMmaTile, j_end);
    __syncwarp();  // every lane is done with the slot before the next iteration refills it
  }
  mma::cp_async_wait<0>();
}

// K/V elements for warp_keys_strided: keys below qlen dequantized from the codes (any bits,
// head_dim, group), the others from the bf16 rows.
struct KiviElements {
  using Elem = float;
  KiviHead h;
  const bf16 *k, *v;  // this (sequence, KV head)'s bf16 rows
  RingRows rows;
  int64_t qlen;
  int bits;
  __device__ static Elem zero() { return 0.f; }
  __device__ float code(const uint8_t* row, int e) const {
    const int bit = e * bits;
    return float((unsigned(row[bit / 8]) >> (bit % 8)) & ((1u << bits) - 1));
  }
  template <int kN>
  __device__ void load(int64_t j, int lane, int64_t hd, Elem (&kr)[kN], Elem (&vr)[kN]) const {
    const bool quantized = j < qlen;
    const uint8_t* kc = h.k_codes + j * h.row_bytes;
    const uint8_t* vc = h.v_codes + j * h.row_bytes;
    const KiviParam* kp = h.k_params + j / h.group * hd;
    const KiviParam* vp = h.v_params + j * h.value_blocks;
    const int64_t row = quantized ? 0 : rows(j);
    const int vgroup = h.group < 256 ? int(h.group) : 256;  // e / vgroup == e / group for e < 256 (32-bit)
#pragma unroll
    for (int i = 0; i < kN; ++i) {
      const int e = lane + 32 * i;
      if (e >= hd) {
        kr[i] = vr[i] = 0.f;
      } else if (quantized) {
        const float2 a = __half22float2(kp[e]), b = __half22float2(vp[e / vgroup]);
        kr[i] = a.x + code(kc, e) * a.y;
        vr[i] = b.x + code(vc, e) * b.y;
      } else {
        kr[i] = __bfloat162float(k[row + e]);
        vr[i] = __bfloat162float(v[row + e]);
      }
    }
  }
};

// kWide: head_dim == 32 * kEpl in {64, 128, 256} and kBits 4 or 8 (wide_pass_kivi; kMma: head_dim
// 64/128 on tensor cores, mma_pass_kivi and mma_pass_bf16), else the generic pass (kBits 0:
// p.kivi.bits at run time). kG: query heads per block (1 unless kWide).
// The tensor-core kernel is held to 2 blocks of 4 warps per SM (255 registers): a warp keeps a
// whole tile's codes in flight, and 3 blocks per SM spilled them (4 bits: 59 us against 53 us at 8
// bits on the H100, GQA 32k). kStages > 0 (tensor cores): the codes through a cp.async ring of
// kStages tiles per warp in dynamic shared memory (mma_pass_kivi_staged), kivi_min_blocks() blocks per SM.
constexpr int kivi_min_blocks(int stages) { return stages == 2 ? 3 : 2; }
template <int kEpl, bool kWide, int kG, int kBits, bool kMma = false, int kStages = 0>
__global__ void __launch_bounds__(32 * kWarps, kMma ? kivi_min_blocks(kStages) : 1) kivi_attention_kernel(AttentionParams p) {
  static_assert(kG == 1 || kWide, "grouped heads need the wide pass");
  static_assert(kG <= kWarps, "one merging warp per head");
  static_assert(!kMma || kWide, "the tensor-core pass is a wide layout");
  constexpr int kHd = 32 * kEpl;
  // Keys per warp step of the quantized pass: the tile chunks and warps are aligned to.
  constexpr int kTile = kMma ? kKiviMmaTile : kWide ? kivi_tile(kHd, kG) : 1;
  pdl_wait();
  pdl_trigger();
  const KiviKv& kv = p.kivi;
  const BlockKeys b = block_keys<kG>(p, kTile);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t hd = p.hd;
  __shared__ BlockShared<kEpl, kG> sh;
  // KiviQuery's query fragments, lane-strided per warp (tensor-core passes only).
  constexpr int kQueryWords = kMma ? kKiviQueryWords<kHd> : 1;
  __shared__ uint32_t kivi_qs[kWarps][kQueryWords][32];
  const bf16* q_rows = p.q + (b.t * p.heads + b.h0) * hd;
  const int64_t head = b.seq * p.kv_heads + b.kvh;  // (sequence, KV head)
  const bool paged = p.pool.paged();
  const RingRows rows{hd, kivi_bf16_rows(kv, p.capacity), p.pool.rows(b.seq, hd)};
  // The head's first row: of its ring (contiguous), of its pool (paged: [kv_heads][pool rows][hd]).
  const int64_t base = (paged ? b.kvh * p.pool.head_rows() : head * rows.ring) * hd;
  const bf16* k_base = p.k_cache + base;
  const bf16* v_base = p.v_cache + base;
  const int64_t row_bytes = (hd * kv.bits + 7) / 8, value_blocks = (hd + kv.group - 1) / kv.group;
  const int64_t code_rows = kivi_code_rows(kv, p.capacity);
  const KiviHead h{kv.k_codes + head * code_rows * row_bytes, kv.v_codes + head * code_rows * row_bytes,
                   kv.k_params + head * (code_rows / kv.group) * hd, kv.v_params + head * code_rows * value_blocks,
                   kv.group, row_bytes, value_blocks};
  // The entries before the launch's first query at its sequence's (the state of the cache before
  // this forward): the same for every row of one sequence.
  const int64_t qlen = kivi_quantized_length(kv, p.seq_lens ? b.pos : int64_t(*p.pos0));
  float m[kG], l[kG];
  if constexpr (kWide) {
    using State = std::conditional_t<kMma, MmaSoftmax<kHd, kG>, WideSoftmax<kHd, kG>>;
    State s = [&] {
      if constexpr (kMma) {
        return State(p.scale, lane);
      } else {
        return State(q_rows, p.scale, lane);
      }
    }();
    // The chunk's quantized keys [begin, min(end, qlen)) are whole tiles: begin is a multiple of
    // kTile, and so are end (unless it is pos + 1 > qlen) and qlen (a multiple of the group).
    const int64_t q_end = b.end < qlen ? b.end : qlen;
    const int64_t tiles = q_end > b.begin ? (q_end - b.begin) / kTile : 0;
    const int64_t per_warp = (tiles + kWarps - 1) / kWarps;
    const int64_t t0 = warp * per_warp < tiles ? warp * per_warp : tiles;
    const int64_t t1 = t0 + per_warp < tiles ? t0 + per_warp : tiles;
    const int64_t bf16_begin = b.begin > qlen ? b.begin : qlen;
    if constexpr (kMma) {
      if constexpr (kStages > 0) {
        extern __shared__ __align__(16) uint8_t kivi_ring[];
        mma_pass_kivi_staged<kHd, kG, kBits, kStages>(
            s, h, q_rows, b.begin + t0 * kTile, b.begin + t1 * kTile,
            kivi_ring + warp * kStages * KiviSlot<kHd, kBits>::kBytes, lane, &kivi_qs[warp][0][lane]);
      } else {
        mma_pass_kivi<kHd, kG, kBits>(s, h, q_rows, b.begin + t0 * kTile, b.begin + t1 * kTile,
                                               &kivi_qs[warp][0][lane]);
      }
      int64_t j0, j1;
      warp_run(bf16_begin, b.end, warp, kMmaKeys, j0, j1);
      mma_pass_bf16(s, rows, q_rows, k_base, v_base, j0, j1);
    } else {
      wide_pass_kivi<kHd, kG, kBits>(s, h, b.begin + t0 * kTile, b.begin + t1 * kTile);
      wide_pass_bf16(s, rows, k_base, v_base, bf16_begin + warp * wide_bf16_step<kHd>(), b.end);
    }
    s.finish(m, l, &sh.o[warp][0][0]);
  } else {
    m[0] = -FLT_MAX, l[0] = 0.f;
    warp_keys_strided<kEpl>(p, KiviElements{h, k_base, v_base, rows, qlen, kv.bits}, q_rows,
                            b.begin + warp * keys_per_step<kEpl>(), b.end, lane, m[0], l[0], &sh.o[warp][0][0]);
  }
  finish_block<kEpl, kG>(p, b, sh, m, l, warp, lane);
}

template <int kEpl>
void launch_generic(const AttentionParams& p, cudaStream_t stream) {
  launch_pdl(kivi_attention_kernel<kEpl, false, 1, 0>, dim3(unsigned(p.n * p.heads), unsigned(p.splits)),
             dim3(32 * kWarps), 0, stream, p);
}

template <int kEpl, int kBits, bool kMma, int kStages>
auto wide_kernel(int g) {
  return g == 4   ? kivi_attention_kernel<kEpl, true, 4, kBits, kMma, kStages>
         : g == 2 ? kivi_attention_kernel<kEpl, true, 2, kBits, kMma, kStages>
                  : kivi_attention_kernel<kEpl, true, 1, kBits, kMma, kStages>;
}

// Dynamic shared memory of the 4-bit tensor-core kernel with a ring of kStages tiles per warp.
template <int kEpl, int kStages>
constexpr size_t ring_smem() { return size_t(kWarps) * kStages * KiviSlot<32 * kEpl, 4>::kBytes; }

// The split count of the ring kernel: p.splits, but by default (kivi_stages -1) for one sequence's
// decode no more chunks than one wave of resident blocks holds (on the H100, 132 SMs: 3 blocks of the
// 2-tile ring per SM, 12 chunks for 32 heads; 2 of the 3-tile ring, 32 chunks for 8 GQA blocks). A
// warp then has tens of tiles to stream instead of a few: MHA 32/32 at 32k, 2-tile ring, 92.8 us with
// 12 chunks against 112.4 with the 64 of default_attention_splits (bench/RESULTS.md, kivifast).
template <int kEpl, int kStages>
int ring_splits(const AttentionParams& p, int g) {
  if (p.kivi_stages >= 0 || p.n != 1 || p.seq_lens) return p.splits;
  const void* kernel = reinterpret_cast<const void*>(wide_kernel<kEpl, 4, true, kStages>(g));
  const int64_t wave = resident_blocks(kernel, 32 * kWarps, ring_smem<kEpl, kStages>());
  return int(std::clamp<int64_t>(wave / (p.heads / g), 1, p.splits));
}

template <int kEpl, int kBits, bool kMma = false, int kStages = 0>
void launch_wide(const AttentionParams& p, int g, cudaStream_t stream) {
  AttentionParams q = p;
  size_t smem = 0;
  if constexpr (kStages > 0) smem = ring_smem<kEpl, kStages>(), q.splits = ring_splits<kEpl, kStages>(p, g);
  launch_pdl(wide_kernel<kEpl, kBits, kMma, kStages>(g), dim3(unsigned(p.n * p.heads / g), unsigned(q.splits)),
             dim3(32 * kWarps), smem, stream, q);
}

// Whether the 4-bit tensor-core pass may copy its tiles by cp.async: 16-byte aligned code rows,
// value params and key params of every (sequence, KV head) and tile (params are 4-byte KiviParams:
// a tile's 32 keys' value params are 128 * value_blocks bytes and a group's key params hd * 4).
bool kivi_ring_aligned(const AttentionParams& p) {
  const KiviKv& kv = p.kivi;
  const auto aligned = [](const void* x) { return reinterpret_cast<uintptr_t>(x) % 16 == 0; };
  const int64_t value_blocks = (p.hd + kv.group - 1) / kv.group;
  return aligned(kv.k_codes) && aligned(kv.v_codes) && aligned(kv.k_params) && aligned(kv.v_params) &&
         kivi_code_rows(kv, p.capacity) * value_blocks % 4 == 0;  // the heads' value-param strides
}

// Whether p runs on the tensor-core pass (head_dim 32 * epl, epl 2 or 4) and how its code tiles come
// in: -1 not on tensor cores; else the ring's tiles per warp, 0 for registers. Tensor cores: with
// p.tensor_cores 1, or by default (-1) with several query heads per block or through the ring.
// The ring: 4 bits, aligned buffers (kivi_ring_aligned), and p.kivi_stages 2 or 3, or by default at
// head_dim 128: 3 tiles with several query heads per block, 2 with one (H100, 32k, bench/RESULTS.md
// kivifast: GQA 32/8 41.1 us against 43.5 through registers; MHA 32/32 92.8 us against 107.2 on the
// CUDA-core pass, which one head per block took before).
int kivi_mma_stages(const AttentionParams& p, int epl) {
  const int g = grouped_heads(p);
  const bool wide = p.hd == 32 * epl && p.vectorized && (p.kivi.bits == 4 || p.kivi.bits == 8);
  if ((epl != 2 && epl != 4) || !wide || p.kivi.group % kKiviMmaTile != 0) return -1;
  const bool ring = p.kivi.bits == 4 && kivi_ring_aligned(p);
  const int stages = !ring ? 0 : p.kivi_stages >= 0 ? p.kivi_stages : epl == 4 ? (g > 1 ? 3 : 2) : 0;
  return p.tensor_cores > 0 || (p.tensor_cores < 0 && (g > 1 || stages > 0)) ? stages : -1;
}

// head_dim <= 32 * kEpl with kEpl 2, 4 or 8: the tensor-core path (head_dim 64/128, 4 or 8 bits,
// groups of a multiple of kKiviMmaTile keys; kivi_mma_stages: p.tensor_cores 1, or -1 with several
// query heads per block or through the ring; one head per block through registers measured slower
// than the CUDA-core pass, 154 against 110 us at 32k, int4, H100), else the CUDA-core wide path where
// it applies, else the generic one.
template <int kEpl>
void launch_epl(const AttentionParams& p, cudaStream_t stream) {
  const int g = grouped_heads(p);
  const int64_t group = p.kivi.group;
  const bool wide = p.hd == 32 * kEpl && p.vectorized && (p.kivi.bits == 4 || p.kivi.bits == 8);
  if constexpr (kEpl <= 4) {
    const int stages = kivi_mma_stages(p, kEpl);
    if (stages >= 0) {
      if (p.kivi.bits == 8) return launch_wide<kEpl, 8, true>(p, g, stream);
      if (stages == 3) return launch_wide<kEpl, 4, true, 3>(p, g, stream);
      if (stages == 2) return launch_wide<kEpl, 4, true, 2>(p, g, stream);
      return launch_wide<kEpl, 4, true>(p, g, stream);
    }
  }
  if (wide && group % 8 == 0 && group % kivi_tile(32 * kEpl, g) == 0)
    return p.kivi.bits == 4 ? launch_wide<kEpl, 4>(p, g, stream) : launch_wide<kEpl, 8>(p, g, stream);
  launch_generic<kEpl>(p, stream);
}

}  // namespace

int kivi_attention_splits(const AttentionParams& p) {
  const int g = grouped_heads(p);
  if (p.hd == 128) {
    const int stages = kivi_mma_stages(p, 4);
    if (stages == 3) return ring_splits<4, 3>(p, g);
    if (stages == 2) return ring_splits<4, 2>(p, g);
  } else if (p.hd == 64) {
    const int stages = kivi_mma_stages(p, 2);
    if (stages == 3) return ring_splits<2, 3>(p, g);
    if (stages == 2) return ring_splits<2, 2>(p, g);
  }
  return p.splits;
}

void launch_kivi_attention(const AttentionParams& p, cudaStream_t stream) {
  const KiviKv& kv = p.kivi;
  CTX_CHECK(kv.bits == 2 || kv.bits == 4 || kv.bits == 8, "KIVI attention needs 2, 4 or 8 bits");
  CTX_CHECK(kv.group >= 1 && kv.residual >= 0 && kv.k_codes && kv.v_codes && kv.k_params && kv.v_params,
            "KIVI attention: group, residual and buffers");
  CTX_CHECK(p.window == 0, "KIVI attention is over a cache without a window");
  CTX_CHECK(!p.pool.paged() || p.pool.valid(), "KIVI attention: paged shape");
  CTX_CHECK(p.kivi_stages == -1 || p.kivi_stages == 0 || p.kivi_stages == 2 || p.kivi_stages == 3,
            "KIVI attention: kivi_stages must be -1, 0, 2 or 3");
  switch ((p.hd + 31) / 32) {
    case 1: return launch_generic<1>(p, stream);
    case 2: return launch_epl<2>(p, stream);
    case 3: return launch_generic<3>(p, stream);
    case 4: return launch_epl<4>(p, stream);
    case 5: return launch_generic<5>(p, stream);
    case 6: return launch_generic<6>(p, stream);
    case 7: return launch_generic<7>(p, stream);
    default: return launch_epl<8>(p, stream);
  }
}

}  // namespace ctx::cuda
