#include "plugins/quant/common/ggml_blocks.h"

#include <immintrin.h>

#include <cmath>

namespace ctx::quant {

void Q8Activations::quantize(const float* x, int64_t n_rows, int64_t n_cols) {
  CTX_CHECK(n_cols % 32 == 0, "q8 activations need cols divisible by 32, got ", n_cols);
  n = n_rows;
  cols = n_cols;
  q.resize(size_t(n * cols));
  d.resize(size_t(n * cols / 32));
  sum.resize(size_t(n * cols / 32));
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the lane-wise packs
  for (int64_t b = 0; b < n * cols / 32; ++b) {
    const float* xb = x + b * 32;
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(xb + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float m = _mm_cvtss_f32(h), scale = m / 127.0f;
    d[size_t(b)] = scale;
    const __m256 inv = _mm256_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
    __m256i i32[4];
    for (int k = 0; k < 4; ++k) i32[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], inv));  // nearest, ties to even
    const __m256i i16 = _mm256_packs_epi32(i32[0], i32[1]), j16 = _mm256_packs_epi32(i32[2], i32[3]);
    const __m256i i8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16, j16), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q.data() + b * 32), i8);
    const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, i8), ones16);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    sum[size_t(b)] = _mm_cvtsi128_si32(t);
  }
}

}  // namespace ctx::quant
