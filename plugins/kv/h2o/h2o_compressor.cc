// `h2o` (Heavy-Hitter Oracle): every entry accumulates the attention it receives from every query
// of the sequence (prefill rows and then each decode query; averaged over the query heads of its
// KV head), kept in the cache's layer state and compacted with it. The budget holds a recent window
// (`recent` entries, or recent_ratio of the budget) plus the entries of highest accumulated
// attention. Decode-time by nature: every = 1 by default (evict as soon as over budget).
#include <cmath>
#include <memory>

#include "core/kv/attention_probs.h"
#include "core/kv/scored_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class H2oCompressor final : public ScoredCompressor {
 public:
  H2oCompressor(KvBudget b, double recent_ratio, int64_t recent)
      : ScoredCompressor(std::move(b)), recent_ratio_(recent_ratio), recent_(recent) {}

 protected:
  void observe(const KvStep& s) const override { accumulate_attention(s, 0, s.n_new, s.state->scores); }
  void score(const KvStep& s, std::vector<std::vector<float>>& scores) const override { scores = s.state->scores; }
  int64_t recent(int64_t target) const override {
    return recent_ > 0 ? recent_ : int64_t(std::floor(recent_ratio_ * double(target) + 0.5));
  }

 private:
  double recent_ratio_;
  int64_t recent_;
};

}  // namespace

void register_kv_h2o(Catalog& catalog) {
  ParamSchema schema = KvBudget::schema({}, 1);
  schema.push_back(ParamSpec::Float("recent_ratio", 0.5, 0.0, 1.0, "share of the budget kept as the recent window"));
  schema.push_back(ParamSpec::Int("recent", 0, 0, std::nullopt, "recent entries kept (0 = use recent_ratio)"));
  catalog.kv.add({"h2o", 1, "H2O: heavy hitters by accumulated attention plus a recent window", schema},
                 [](const Params& p) {
                   return std::make_unique<H2oCompressor>(KvBudget::from(p, "kv plugin 'h2o'"),
                                                          p.get_float("recent_ratio"), p.get_int("recent"));
                 });
}

}  // namespace ctx
