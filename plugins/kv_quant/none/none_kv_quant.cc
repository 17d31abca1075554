// kv_quant `none`: KV entries stay float32.
#include <memory>

#include "core/plugin/catalog.h"

namespace ctx {

void register_kv_quant_none(Catalog& catalog) {
  catalog.kv_quant.add({"none", 1, "no KV quantization: every entry stays float32", {}},
                       [](const Params&) { return std::make_unique<KvQuantConfig>(); });
}

}  // namespace ctx
