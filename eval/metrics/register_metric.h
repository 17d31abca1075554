// Shared by the register_<name>(Catalog&) functions of eval/metrics: adds metric class M, constructed
// from its validated Params, to the catalog's metric registry.
#pragma once

#include <memory>
#include <string>

#include "core/plugin/catalog.h"
#include "eval/metric.h"

namespace ctx {

template <class M>
void add_metric(Catalog& catalog, std::string name, std::string help, ParamSchema schema = {}) {
  catalog.metric.add(PluginInfo{std::move(name), 1, std::move(help), std::move(schema)},
                     [](const Params& params) -> std::unique_ptr<MetricPlugin> { return std::make_unique<M>(params); });
}

}  // namespace ctx
