// `fp4`: bitsandbytes' 4-bit float (1 sign, 2 exponent, 1 mantissa bits) in its blockwise 4-bit format
// (plugins/quant/common/blockwise_4bit.h). Values: bitsandbytes functional.py get_4bit_type("fp4"),
// {0, 0.0625, 8, 12, 4, 6, 2, 3} and their negatives (bit 3 is the sign), divided by 12. A normalized
// weight gets the sign bit and the nearest magnitude (bitsandbytes' dQuantizeFP4).
#include <algorithm>
#include <cmath>

#include "core/plugin/catalog.h"
#include "plugins/quant/common/blockwise_4bit.h"

namespace ctx {
namespace {

constexpr float kMagnitude[8] = {0.0f, 0.0625f, 8.0f, 12.0f, 4.0f, 6.0f, 2.0f, 3.0f};

std::array<float, 16> fp4_values() {
  std::array<float, 16> v{};
  for (int i = 0; i < 8; ++i) {
    v[size_t(i)] = kMagnitude[i] / 12.0f;
    v[size_t(i + 8)] = -kMagnitude[i] / 12.0f;
  }
  return v;
}

uint8_t encode_fp4(float x) {
  static const auto sorted = [] {  // codes 0..7 by ascending magnitude
    std::array<uint8_t, 8> c = {0, 1, 2, 3, 4, 5, 6, 7};
    std::sort(c.begin(), c.end(), [](uint8_t a, uint8_t b) { return kMagnitude[a] < kMagnitude[b]; });
    return c;
  }();
  const uint8_t sign = x < 0 ? 8 : 0;
  const float a = std::fabs(x);
  int k = 0;
  for (int i = 0; i < 7; ++i) k += a > 0.5f * (kMagnitude[sorted[size_t(i)]] / 12.0f + kMagnitude[sorted[size_t(i + 1)]] / 12.0f);
  return uint8_t(sign | sorted[size_t(k)]);
}

const quant::Code4 kFp4Code{"fp4", fp4_values(), encode_fp4};

}  // namespace

void register_fp4(Catalog& catalog) {
  quant::register_blockwise_4bit(catalog, kFp4Code,
                                 "bitsandbytes FP4 (e2m1): 4-bit float codes, absmax per block (4 + 32/blocksize bits/weight)");
}

}  // namespace ctx
