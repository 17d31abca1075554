// The generic fused decode kernel (used by `int8`; nf4/fp4 and q8_0/q4_0 have their own kernels in
// blockwise_4bit.cc and ggml_blocks.h) and the SIMD dequantizer shared by every format's
// dequantize_rows(), written once over a "group decoder" D that exposes a matrix as groups of 32 consecutive weights of a row:
//   int64_t rows() const, cols() const;
//   float group_scale(int64_t r, int64_t g) const;            // multiplies the group's values
//   void load_group(int64_t r, int64_t g, __m256 w[4]) const; // unscaled values of cols [32g, 32g+32)
//   float value(int64_t r, int64_t c) const;                  // scaled value, for cols >= 32 * (cols / 32)
// Activations stay float32 (weight-only quantization): per group, the 32 decoded weights are multiplied
// with each of the n <= 8 input rows (decoded once, used n times) and the sum is scaled once.
// AVX2/FMA (the build targets x86-64-v3). Pure functions; thread-safe.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "core/base/error.h"
#include "plugins/attention/common/vec_ops.h"

namespace ctx::quant {

// 32 int8 values -> 4 x 8 floats.
inline void load_i8x32(const int8_t* q, __m256 w[4]) {
  for (int k = 0; k < 4; ++k)
    w[k] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * k))));
}

template <int N, class D>
void fused_rows_n(const D& d, const float* x, float* y, int64_t r0, int64_t r1) {
  const int64_t cols = d.cols(), rows = d.rows(), groups = cols / 32;
  for (int64_t r = r0; r < r1; ++r) {
    __m256 acc[N];
    for (int j = 0; j < N; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
      __m256 w[4];
      d.load_group(r, g, w);
      const __m256 s = _mm256_set1_ps(d.group_scale(r, g));
      for (int j = 0; j < N; ++j) {
        const float* xj = x + j * cols + g * 32;
        __m256 p0 = _mm256_mul_ps(w[0], _mm256_loadu_ps(xj));
        __m256 p1 = _mm256_mul_ps(w[1], _mm256_loadu_ps(xj + 8));
        p0 = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xj + 16), p0);
        p1 = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xj + 24), p1);
        acc[j] = _mm256_fmadd_ps(_mm256_add_ps(p0, p1), s, acc[j]);
      }
    }
    for (int j = 0; j < N; ++j) {
      float v = vec::hsum(acc[j]);
      for (int64_t c = groups * 32; c < cols; ++c) v += d.value(r, c) * x[j * cols + c];
      y[j * rows + r] = v;
    }
  }
}

// y[j * rows + r] for j < n (1..8), r in [r0, r1).
template <class D>
void fused_rows(const D& d, const float* x, int64_t n, float* y, int64_t r0, int64_t r1) {
  switch (n) {
    case 1: return fused_rows_n<1>(d, x, y, r0, r1);
    case 2: return fused_rows_n<2>(d, x, y, r0, r1);
    case 3: return fused_rows_n<3>(d, x, y, r0, r1);
    case 4: return fused_rows_n<4>(d, x, y, r0, r1);
    case 5: return fused_rows_n<5>(d, x, y, r0, r1);
    case 6: return fused_rows_n<6>(d, x, y, r0, r1);
    case 7: return fused_rows_n<7>(d, x, y, r0, r1);
    case 8: return fused_rows_n<8>(d, x, y, r0, r1);
  }
  CTX_CHECK(false, "fused kernel for n = ", n);
}

// Rows [r0, r1) as floats ([r1 - r0, cols] row-major), through the same decoder.
template <class D>
void dequantize_groups(const D& d, int64_t r0, int64_t r1, float* out) {
  const int64_t cols = d.cols(), groups = cols / 32;
  for (int64_t r = r0; r < r1; ++r) {
    float* o = out + (r - r0) * cols;
    for (int64_t g = 0; g < groups; ++g) {
      __m256 w[4];
      d.load_group(r, g, w);
      const __m256 s = _mm256_set1_ps(d.group_scale(r, g));
      for (int k = 0; k < 4; ++k) _mm256_storeu_ps(o + g * 32 + 8 * k, _mm256_mul_ps(w[k], s));
    }
    for (int64_t c = groups * 32; c < cols; ++c) o[c] = d.value(r, c);
  }
}

}  // namespace ctx::quant
