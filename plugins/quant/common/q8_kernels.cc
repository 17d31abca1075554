#include "plugins/quant/common/q8_kernels.h"

#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "core/base/error.h"

namespace ctx::quant {

void Q8Activations::quantize(const float* x, int64_t n_rows, int64_t n_cols, Order element_order) {
  CTX_CHECK(n_cols % 32 == 0, "q8 activations need cols divisible by 32, got ", n_cols);
  n = n_rows;
  cols = n_cols;
  order = element_order;
  // kEvenOdd: per 128-bit lane the even bytes then the odd ones, then the lanes' halves interleaved.
  const __m256i even_odd = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                            0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  q.resize(size_t(n * cols));
  d.resize(size_t(n * cols / 32));
  bias.resize(size_t(n * cols / 32 * 8));
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i unpack = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // undoes the lane-wise packs
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
    __m256i i8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i16, j16), unpack);
    if (element_order == kEvenOdd) i8 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(i8, even_odd), 0xD8);
    const __m256i sum4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, i8), ones16);  // codes 4i..4i+3
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(bias.data() + b * 8), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum4, 7)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q.data() + b * 32), i8);
  }
}

const Q8Activations& Q8Activations::of(const float* x, int64_t n_rows, int64_t n_cols, Order element_order) {
  thread_local Q8Activations buffer;
  buffer.quantize(x, n_rows, n_cols, element_order);
  return buffer;
}

namespace {

std::atomic<bool>& avx_vnni_flag() {
  static std::atomic<bool> on{[] {
    const char* isa = std::getenv("CTXLAB_Q8_ISA");
    return __builtin_cpu_supports("avxvnni") && !(isa && std::string_view(isa) == "avx2");
  }()};
  return on;
}

}  // namespace

bool q8_avx_vnni() { return avx_vnni_flag().load(std::memory_order_relaxed); }

void set_q8_avx_vnni(bool on) { avx_vnni_flag().store(on && __builtin_cpu_supports("avxvnni")); }

ParamSpec activations_param() {
  return ParamSpec::Choice("activations", "float32", {"float32", "q8_0"},
                           "float32: activations stay float (bitsandbytes; the reference kernel); q8_0: quantize them per call "
                           "to int8 blocks of 32 and take integer dot products (llama.cpp-style, faster, approximate)");
}

bool q8_activations(const Params& p) { return p.get_string("activations") == "q8_0"; }

}  // namespace ctx::quant
