#include "core/cuda/gpu_kv_policy.h"

#include "core/base/error.h"

namespace ctx::cuda {

int64_t GpuKvPolicy::target(int64_t layer, int64_t length, int64_t position) const {
  if (!enabled() || budget.skips(layer)) return -1;
  const int64_t t = budget.target(position);
  if (position < budget.prune_after || length <= t) return -1;
  return t;
}

GpuKvPolicy gpu_kv_policy(const PluginSpec& spec) {
  GpuKvPolicy p;
  if (spec.name == "none") return p;
  if (spec.name == "l2norm") {
    p.method = GpuKvMethod::kL2Norm;
    p.keep_low = spec.params.get_string("keep") == "low";
  } else if (spec.name == "streaming") {
    p.method = GpuKvMethod::kStreaming;
    p.n_sink = spec.params.get_int("n_sink");
  } else if (spec.name == "random") {
    p.method = GpuKvMethod::kRandom;
    p.seed = uint64_t(spec.params.get_int("seed"));
  } else {
    throw Unsupported(str_cat("kv ", spec.name, " on device cuda: not implemented on the GPU yet (l2norm, streaming "
                              "and random are; ", spec.name, " needs the step's attention scores)"));
  }
  p.budget = KvBudget::from(spec.params, "kv plugin '" + spec.name + "'");
  return p;
}

}  // namespace ctx::cuda
