// `int8`: weight-only int8 with one absmax per output channel (row), w ~= q * absmax / 127
// (plugins/quant/common/rowwise_int8.h). Activations stay float32: the fused kernel widens 32 int8
// weights at a time to float (vpmovsxbd + vcvtdq2ps) and multiplies with FMA, reading each weight once.
#include "core/plugin/catalog.h"
#include "core/quant/quantize_model.h"
#include "plugins/quant/common/rowwise_int8.h"

namespace ctx {
namespace {

class Int8Quantizer final : public Quantizer {
 public:
  std::shared_ptr<const QuantizedMatrix> quantize(const WeightMatrix& w) const override {
    return std::make_shared<quant::RowwiseInt8Matrix>(w);
  }
};

}  // namespace

void register_int8(Catalog& catalog) {
  register_quantizer(catalog.quant, {"int8", 1, "weight-only int8, per-output-channel absmax (8 + 32/cols bits/weight)", {}},
                    [](const Params&) { return std::make_unique<Int8Quantizer>(); });
}

}  // namespace ctx
