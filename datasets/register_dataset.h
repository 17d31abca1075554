// Shared by the register_<name>(Catalog&) functions of datasets/<name>/: adds dataset class D,
// constructed from its validated Params, to the catalog's dataset registry with the common
// parameters (common_params.h) appended to its own schema.
#pragma once

#include <memory>
#include <string>

#include "core/plugin/catalog.h"
#include "datasets/common_params.h"
#include "datasets/dataset.h"

namespace ctx {

template <class D>
void add_dataset(Catalog& catalog, std::string name, std::string help, ParamSchema schema = {}) {
  catalog.dataset.add(PluginInfo{std::move(name), 1, std::move(help), data::with_common_params(std::move(schema))},
                      [](const Params& params) -> std::unique_ptr<DatasetPlugin> { return std::make_unique<D>(params); });
}

}  // namespace ctx
