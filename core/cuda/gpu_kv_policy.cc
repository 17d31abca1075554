#include "core/cuda/gpu_kv_policy.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"

namespace ctx::cuda {

int64_t GpuKvPolicy::target(int64_t layer, int64_t length, int64_t position) const {
  if (!enabled() || budget.skips(layer)) return -1;
  const int64_t t = budget.target(position);
  if (position < budget.prune_after || length <= t) return -1;
  return t;
}

int64_t GpuKvPolicy::protect(int64_t target) const {
  int64_t extra = 0;  // the h2o plugin's recent(target)
  if (method == GpuKvMethod::kH2o) extra = recent > 0 ? recent : int64_t(std::floor(recent_ratio * double(target) + 0.5));
  return std::min(target, std::max(budget.protect_recent, extra));
}

bool GpuKvPolicy::needs_attention() const {
  return method == GpuKvMethod::kSnapKv || method == GpuKvMethod::kH2o || method == GpuKvMethod::kTova;
}

GpuKvPolicy::Rows GpuKvPolicy::attention_rows(int64_t n) const {
  // h2o observes every query of every step; snapkv and tova score only when they may compress: a
  // prefill step, or a decode step when every > 0.
  if (n < 1 || !needs_attention()) return {};
  if (method == GpuKvMethod::kH2o) return {0, n};
  if (n == 1 && budget.every == 0) return {};
  if (method == GpuKvMethod::kSnapKv) return {n - std::min(window, n), n};
  return {n - 1, n};  // tova: the last query
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
  } else if (spec.name == "snapkv") {
    p.method = GpuKvMethod::kSnapKv;
    p.window = spec.params.get_int("window_size");
    p.kernel = spec.params.get_int("kernel_size");
    if (p.kernel % 2 == 0) fail("kv plugin 'snapkv': kernel_size=", p.kernel, " must be odd (the pooling is centred)");
    p.max_pool = spec.params.get_string("pooling") == "max";
  } else if (spec.name == "h2o") {
    p.method = GpuKvMethod::kH2o;
    p.recent_ratio = spec.params.get_float("recent_ratio");
    p.recent = spec.params.get_int("recent");
  } else if (spec.name == "tova") {
    p.method = GpuKvMethod::kTova;
    p.per_head = spec.params.get_bool("per_head");
  } else {
    throw Unsupported(str_cat("kv ", spec.name, " on device cuda: not implemented on the GPU yet (l2norm, streaming, "
                              "random, snapkv, h2o and tova are)"));
  }
  p.budget = KvBudget::from(spec.params, "kv plugin '" + spec.name + "'");
  return p;
}

}  // namespace ctx::cuda
