// The integer matmul kernel shared by every format that can run with int8 activations (llama.cpp's
// ggml CPU backend technique, its vec_dot_*_q8_0): the activations are quantized once per call to
// q8_0 blocks of 32 (Q8Activations), and every weight group of 32 is read as 32 signed int8 codes
// with one float scale; the group's dot product is exact in int32 and scaled once in float.
//
// Used by q8_0 and q4_0 always (their llama.cpp semantics) and by int8, nf4 and fp4 when the quantizer
// parameter activations=q8_0 asks for it (their bitsandbytes semantics, float activations, stay the
// default and the reference). The per-format error bounds are stated in the formats' headers.
//
// An "int8 group decoder" D exposes a matrix as groups of 32 consecutive weights of a row:
//   int64_t rows() const, cols() const;                // cols % 32 == 0
//   __m256i load_i8(int64_t r, int64_t g) const;       // codes of cols [32g, 32g+32), in [-127, 127]
//   float i8_scale(int64_t r, int64_t g) const;        // weight value = code * i8_scale
//   static constexpr Q8Activations::Order kActivationOrder;  // the order of load_i8()'s 32 codes
//   const void* group_data(int64_t r, int64_t g) const;  // address of the group's packed bytes (any r:
//                                                        // prefetched ahead, never read past rows())
// q8_dot_rows() then computes, per output, sum over groups of float(sum qw * qx) * (i8_scale * dx).
// Group dot: vpsignb makes |qw| unsigned and moves qw's sign onto qx, vpmaddubsw multiplies and adds
// pairs (|pair| <= 2 * 127 * 127 = 32258 < 32767: no saturation), vpmaddwd sums pairs into int32; with
// AVX-VNNI on the CPU (checked at run time) the kernel instead adds 128 to the weight codes (one xor)
// and a single vpdpbusd (unsigned x signed bytes, sums of 4 in int32, no saturation) starting from
// Q8Activations::bias computes the same exact dot: no vpsignb, no vpmaddwd.
// R weight rows are processed together (4 for one activation row), so R independent accumulators hide
// the FMA latency; rows split across OpenMP threads in runs of 16 (QuantizedMatrix::for_row_chunks),
// then in tiles of kTileRows rows multiplied with up to 4 activation rows at a time (each weight group
// decoded once per 4 activation rows; the tile stays in cache for the next 4).
// AVX2 (the build targets x86-64-v3). Pure functions; thread-safe.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/base/error.h"
#include "core/plugin/params.h"
#include "core/quant/quantized_matrix.h"
#include "plugins/attention/common/vec_ops.h"

namespace ctx::quant {

// Activation rows quantized to ggml's q8_0 layout, split in arrays: q [n, cols] int8 and one float
// scale d per block of 32 ([n, cols / 32]): dx = max |x| / 127 over the block, q = round(x / dx)
// (round half to even); value ~= q * d. ggml rounds dx to fp16, we keep float32. cols % 32 == 0.
// Order of the 32 codes within a block: kElements (element order) or kEvenOdd (elements 0, 2, ..., 30
// then 1, 3, ..., 31: the order in which bitsandbytes' packing, element 2k in the high nibble of byte
// k, unpacks cheapest). A dot product only needs both sides in the same order; the decoder's
// kActivationOrder names the one its load_i8() uses, and the matmul quantizes x in it.
struct Q8Activations {
  enum Order { kElements, kEvenOdd };
  int64_t n = 0, cols = 0;
  Order order = kElements;
  std::vector<int8_t> q;
  std::vector<float> d;
  // Per block, 8 int32: -128 * (sum of codes 4i..4i+3): the correction of a vpdpbusd dot product
  // taken with the weight codes + 128 as unsigned bytes (the AVX-VNNI kernel).
  std::vector<int32_t> bias;
  void quantize(const float* x, int64_t n_rows, int64_t n_cols, Order element_order = kElements);
  // The calling thread's buffer (reused between calls: no allocation per token), holding x quantized.
  static const Q8Activations& of(const float* x, int64_t n_rows, int64_t n_cols, Order element_order = kElements);
};

// The `activations` parameter of the formats whose reference semantics keep float activations (int8,
// nf4, fp4): "float32" (default, bitsandbytes) or "q8_0" (this kernel; a documented approximation).
ParamSpec activations_param();
bool q8_activations(const Params& p);

// The 8 int32 partial sums of sum_k w[k] * x[k] over 32 int8 pairs (w, x in [-127, 127]).
inline __m256i dot_i8x32(__m256i w, __m256i x) {
  const __m256i aw = _mm256_sign_epi8(w, w), sx = _mm256_sign_epi8(x, w);
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), aw, sx);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), _mm256_set1_epi16(1));
#endif
}

// The kernel, compiled twice from q8_kernel_body.inc: for AVX2 (namespace avx2) and with AVX-VNNI
// enabled for its functions only (namespace avxvnni; the build stays x86-64-v3), chosen at run time.
#define CTX_Q8_VNNI 0
namespace avx2 {
#include "plugins/quant/common/q8_kernel_body.inc"
}  // namespace avx2
#undef CTX_Q8_VNNI
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avxvnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avxvnni")
#endif
#define CTX_Q8_VNNI 1
namespace avxvnni {
#include "plugins/quant/common/q8_kernel_body.inc"
}  // namespace avxvnni
#undef CTX_Q8_VNNI
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

// Whether q8_dot_rows uses the AVX-VNNI kernel: the CPU has AVX-VNNI and neither the environment
// (CTXLAB_Q8_ISA=avx2) nor set_q8_avx_vnni(false) turned it off. Both kernels give identical results
// (the integer dot products are exact, the float operations the same).
bool q8_avx_vnni();
void set_q8_avx_vnni(bool on);  // on only takes effect where the CPU has AVX-VNNI; for tests and benchmarks

// Rows [r0, r1) of y = x W^T for every activation row of `a` (any n).
template <class D>
void q8_dot_rows(const D& d, const Q8Activations& a, float* y, int64_t r0, int64_t r1) {
  CTX_CHECK(a.order == D::kActivationOrder && a.cols == d.cols(), "q8 activations in the wrong order or shape");
  if (q8_avx_vnni()) return avxvnni::q8_dot_rows(d, a, y, r0, r1);
  avx2::q8_dot_rows(d, a, y, r0, r1);
}

}  // namespace ctx::quant
