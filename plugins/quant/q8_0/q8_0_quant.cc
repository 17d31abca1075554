// `q8_0`: llama.cpp's Q8_0 (ggml-quants.c block_q8_0): per block of 32, d = absmax / 127 stored as
// fp16, q = round(x / d) as int8 (round half away from zero, roundf); value = q * d.
// 34 bytes per 32 weights = 8.5 bits/weight. matmul() quantizes the activations to q8_0 blocks and
// takes integer dot products, as llama.cpp does (plugins/quant/common/ggml_blocks.h states the
// resulting error bound).
#include <cmath>

#include "core/plugin/catalog.h"
#include "core/quant/quantize_model.h"
#include "plugins/quant/common/ggml_blocks.h"

namespace ctx {
namespace {

struct Q8_0 {
  static constexpr int kPayload = 32;
  static constexpr const char* kName = "q8_0";
  static constexpr PackedKind kPacked = PackedKind::kGgmlQ8_0;
  static void quantize_block(const float* x, quant::GgmlBlock<32>& b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    b.d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) b.qs[j] = uint8_t(int8_t(std::roundf(x[j] * id)));
  }
  static __m256i load_i8(const quant::GgmlBlock<32>& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
  static void decode(const quant::GgmlBlock<32>& b, __m256 w[4]) {
    quant::load_i8x32(reinterpret_cast<const int8_t*>(b.qs), w);
  }
};

}  // namespace

void register_q8_0(Catalog& catalog) {
  register_quantizer(catalog.quant, {"q8_0", 1, "llama.cpp Q8_0: blocks of 32 int8 with an fp16 scale (8.5 bits/weight)", {}},
                    [](const Params&) { return std::make_unique<quant::BlockQuantizer<Q8_0>>(); });
}

}  // namespace ctx
