#include "core/plugin/catalog.h"

namespace ctx {

const RegistryBase* Catalog::find_kind(std::string_view kind) const {
  for (const RegistryBase* r : kinds())
    if (r->kind() == kind) return r;
  return nullptr;
}

std::vector<const RegistryBase*> Catalog::kinds() const { return {&attention, &kv, &kv_quant, &quant, &dataset, &metric}; }

KvQuantConfig resolve_kv_quant(const Catalog& catalog, std::string_view spec) {
  const PluginSpec resolved = catalog.kv_quant.resolve(spec);
  KvQuantConfig config = *catalog.kv_quant.create(resolved);
  config.spec = resolved.canonical();
  return config;
}

}  // namespace ctx
