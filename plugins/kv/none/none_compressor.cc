// `none`: keeps every entry; the engine behaves exactly as without a compressor.
#include <memory>

#include "core/kv/kv_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class NoneCompressor final : public KvCompressor {
 public:
  Support supports(const ModelConfig&) const override { return Support::yes(); }
  KvKeep after_step(const KvStep&) const override { return {}; }
  bool keeps_all() const override { return true; }
};

}  // namespace

void register_kv_none(Catalog& catalog) {
  catalog.kv.add({"none", 1, "no compression: every KV entry is kept", {}},
                 [](const Params&) { return std::make_unique<NoneCompressor>(); });
}

}  // namespace ctx
