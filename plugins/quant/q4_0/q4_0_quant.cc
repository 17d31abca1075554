// `q4_0`: llama.cpp's Q4_0 (ggml-quants.c block_q4_0): per block of 32, m = the element of largest
// magnitude (with its sign), d = m / -8 stored as fp16, q = min(15, trunc(x / d + 8.5)) in 4 bits;
// value = (q - 8) * d. Byte j holds element j in its low nibble and element j + 16 in its high one.
// 18 bytes per 32 weights = 4.5 bits/weight. matmul() quantizes the activations to q8_0 blocks and
// takes integer dot products, as llama.cpp does (plugins/quant/common/ggml_blocks.h states the
// resulting error bound); the nibbles are split with a per-lane shift and a mask, and 8 is subtracted
// to give the signed codes of the shared int8 kernel (plugins/quant/common/q8_kernels.h).
#include <cmath>

#include "core/plugin/catalog.h"
#include "core/quant/quantize_model.h"
#include "plugins/quant/common/ggml_blocks.h"

namespace ctx {
namespace {

struct Q4_0 {
  static constexpr int kPayload = 16;
  static constexpr const char* kName = "q4_0";
  static constexpr PackedKind kPacked = PackedKind::kGgmlQ4_0;
  static void quantize_block(const float* x, quant::GgmlBlock<16>& b) {
    float amax = 0, m = 0;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), m = x[j];
    const float d = m / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    b.d = f32_to_f16(d);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int hi = std::min(15, int(int8_t(x[j + 16] * id + 8.5f)));
      b.qs[j] = uint8_t(lo | (hi << 4));
    }
  }
  static __m256i load_i8(const quant::GgmlBlock<16>& b) {
    // The 16 bytes in both halves; the high half shifted by 4: elements 0..15 then 16..31.
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs)));
    const __m256i u = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
    return _mm256_sub_epi8(u, _mm256_set1_epi8(8));
  }
  static void decode(const quant::GgmlBlock<16>& b, __m256 w[4]) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(v, m), eight);                     // elements 0..15
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m), eight);  // elements 16..31
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) w[k] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k]));
  }
};

}  // namespace

void register_q4_0(Catalog& catalog) {
  register_quantizer(catalog.quant, {"q4_0", 1, "llama.cpp Q4_0: blocks of 32 4-bit values with an fp16 scale (4.5 bits/weight)", {}},
                    [](const Params&) { return std::make_unique<quant::BlockQuantizer<Q4_0>>(); });
}

}  // namespace ctx
