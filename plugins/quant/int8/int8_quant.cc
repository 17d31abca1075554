// `int8`: weight-only int8 with one absmax per output channel (row), w ~= q * absmax / 127
// (plugins/quant/common/rowwise_int8.h). Activations stay float32 by default (bitsandbytes): the fused
// kernel widens 32 int8 weights at a time to float (vpmovsxbd + vcvtdq2ps) and multiplies with FMA,
// reading each weight once. activations=q8_0 quantizes them to q8_0 blocks of 32 instead and takes
// integer dot products (plugins/quant/common/q8_kernels.h), within the error bound rowwise_int8.h states.
#include "core/plugin/catalog.h"
#include "core/quant/quantize_model.h"
#include "plugins/quant/common/q8_kernels.h"
#include "plugins/quant/common/rowwise_int8.h"

namespace ctx {
namespace {

class Int8Quantizer final : public Quantizer {
 public:
  explicit Int8Quantizer(bool q8_activations) : q8_activations_(q8_activations) {}
  std::shared_ptr<const QuantizedMatrix> quantize(const WeightMatrix& w) const override {
    return std::make_shared<quant::RowwiseInt8Matrix>(w, q8_activations_);
  }

 private:
  bool q8_activations_;
};

}  // namespace

void register_int8(Catalog& catalog) {
  register_quantizer(catalog.quant,
                     {"int8", 1, "weight-only int8, per-output-channel absmax (8 + 32/cols bits/weight)", {quant::activations_param()}},
                     [](const Params& p) { return std::make_unique<Int8Quantizer>(quant::q8_activations(p)); });
}

}  // namespace ctx
