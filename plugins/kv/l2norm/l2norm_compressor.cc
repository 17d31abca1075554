// `l2norm` (the seed method, KnormPress): keeps, per layer and KV head, the entries whose keys have
// the smallest L2 norm (keep=low, the default: low-norm keys draw the most attention), or the
// largest (keep=high, the ablation). Layers 0 and 1 are skipped by default.
#include <cmath>
#include <memory>

#include "core/kv/scored_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class L2NormCompressor final : public ScoredCompressor {
 public:
  L2NormCompressor(KvBudget b, bool keep_low) : ScoredCompressor(std::move(b)), keep_low_(keep_low) {}

 protected:
  void score(const KvStep& s, std::vector<std::vector<float>>& scores) const override {
    for (int64_t h = 0; h < s.num_kv_heads; ++h)
      for (int64_t j = 0; j < s.kv.length; ++j) {
        const float* k = s.kv.key(h, j);
        double ss = 0;
        for (int64_t d = 0; d < s.head_dim; ++d) ss += double(k[d]) * k[d];
        const float norm = float(std::sqrt(ss));
        scores[size_t(h)][size_t(j)] = keep_low_ ? -norm : norm;
      }
  }

 private:
  bool keep_low_;
};

}  // namespace

void register_kv_l2norm(Catalog& catalog) {
  ParamSchema schema = KvBudget::schema({0, 1}, 0);
  schema.push_back(ParamSpec::Choice("keep", "low", {"low", "high"},
                                     "keep the keys of lowest L2 norm (low, the seed method) or highest (high)"));
  catalog.kv.add({"l2norm", 1, "keep the entries whose keys have the lowest (or highest) L2 norm", schema},
                 [](const Params& p) {
                   return std::make_unique<L2NormCompressor>(KvBudget::from(p, "kv plugin 'l2norm'"),
                                                             p.get_string("keep") == "low");
                 });
}

}  // namespace ctx
