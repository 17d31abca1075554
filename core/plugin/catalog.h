// The Catalog: one typed registry per plugin kind. An instance, filled by register_all()
// (plugins/register_all.h), so that tests and tools can build their own catalogs.
#pragma once

#include "core/attention/attention_backend.h"
#include "core/kv/kv_compressor.h"
#include "core/kv/kv_quant.h"
#include "core/plugin/registry.h"
#include "core/quant/quantizer.h"

namespace ctx {

// Interfaces of the kinds implemented outside core (datasets/dataset.h, eval/metric.h), which core
// does not depend on; their registries live here so that names, specs and listings work uniformly.
class DatasetPlugin;
class MetricPlugin;

struct Catalog {
  Registry<AttentionBackend> attention{"attention"};
  Registry<KvCompressor> kv{"kv"};
  Registry<KvQuantConfig> kv_quant{"kv_quant"};  // KV-cache quantization: a configuration, no behaviour
  Registry<Quantizer> quant{"quant"};
  Registry<DatasetPlugin> dataset{"dataset"};
  Registry<MetricPlugin> metric{"metric"};

  // The registry of `kind`, or nullptr.
  const RegistryBase* find_kind(std::string_view kind) const;
  std::vector<const RegistryBase*> kinds() const;  // attention, kv, kv_quant, quant, dataset, metric
};

// The KV quantization of a kv_quant spec text ("none", "kivi:bits=4"), its canonical spec in .spec.
// Throws ctx::Error for an unknown name or a bad parameter.
KvQuantConfig resolve_kv_quant(const Catalog& catalog, std::string_view spec);

}  // namespace ctx
