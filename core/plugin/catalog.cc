#include "core/plugin/catalog.h"

namespace ctx {

const RegistryBase* Catalog::find_kind(std::string_view kind) const {
  for (const RegistryBase* r : kinds())
    if (r->kind() == kind) return r;
  return nullptr;
}

std::vector<const RegistryBase*> Catalog::kinds() const { return {&attention, &kv, &quant, &dataset, &metric}; }

}  // namespace ctx
