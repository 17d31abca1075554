// `tova` (Token Omission Via Attention): scores entries by the attention of the step's last query,
// averaged over all query heads of the layer (so every KV head keeps the same entries, as TOVA
// does), or per KV head with per_head=true. After a prefill it reduces to the budget; with the
// default every = 1 each decode step then evicts the lowest-scored entries while over budget.
#include <memory>

#include "core/kv/attention_probs.h"
#include "core/kv/scored_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class TovaCompressor final : public ScoredCompressor {
 public:
  TovaCompressor(KvBudget b, bool per_head) : ScoredCompressor(std::move(b)), per_head_(per_head) {}

 protected:
  void score(const KvStep& s, std::vector<std::vector<float>>& scores) const override {
    accumulate_attention(s, s.n_new - 1, s.n_new, scores);  // scores arrive zeroed
    if (per_head_) return;
    std::vector<float> mean(scores[0].size(), 0.0f);
    for (const auto& sc : scores)
      for (size_t j = 0; j < sc.size(); ++j) mean[j] += sc[j] / float(s.num_kv_heads);
    for (auto& sc : scores) sc = mean;
  }

 private:
  bool per_head_;
};

}  // namespace

void register_kv_tova(Catalog& catalog) {
  ParamSchema schema = KvBudget::schema({}, 1);
  schema.push_back(ParamSpec::Bool("per_head", false, "score per KV head instead of averaged over the layer's heads"));
  catalog.kv.add({"tova", 1, "TOVA: evict the entries the last query attends to least (decode-time)", schema},
                 [](const Params& p) {
                   return std::make_unique<TovaCompressor>(KvBudget::from(p, "kv plugin 'tova'"),
                                                           p.get_bool("per_head"));
                 });
}

}  // namespace ctx
