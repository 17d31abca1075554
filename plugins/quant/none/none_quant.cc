// `none`: keeps every matrix in float32 (the baseline of a quantization sweep).
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class NoQuantizer final : public Quantizer {
 public:
  std::shared_ptr<const QuantizedMatrix> quantize(const WeightMatrix&) const override { return nullptr; }
};

}  // namespace

void register_quant_none(Catalog& catalog) {
  catalog.quant.add({"none", 1, "no quantization: float32 weights (the baseline)", {}},
                    [](const Params&) { return std::make_unique<NoQuantizer>(); });
}

}  // namespace ctx
