// `nf4`: bitsandbytes' 4-bit NormalFloat (QLoRA, Dettmers et al. 2023) in its blockwise 4-bit format
// (plugins/quant/common/blockwise_4bit.h). Values: bitsandbytes functional.py get_4bit_type("nf4");
// a normalized weight gets the nearest value (bitsandbytes' dQuantizeNF4 compares with the midpoints).
#include "core/plugin/catalog.h"
#include "plugins/quant/common/blockwise_4bit.h"

namespace ctx {
namespace {

constexpr std::array<float, 16> kNf4 = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};

// The table is ascending: the code is the number of midpoints below x.
uint8_t encode_nf4(float x) {
  uint8_t q = 0;
  for (int i = 0; i < 15; ++i) q += x > 0.5f * (kNf4[size_t(i)] + kNf4[size_t(i + 1)]);
  return q;
}

const quant::Code4 kNf4Code{"nf4", kNf4, encode_nf4};

}  // namespace

void register_nf4(Catalog& catalog) {
  quant::register_blockwise_4bit(catalog, kNf4Code,
                                 "bitsandbytes NF4: 4-bit NormalFloat codes, absmax per block (4 + 32/blocksize bits/weight)");
}

}  // namespace ctx
