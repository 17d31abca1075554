// `streaming` (StreamingLLM): keeps the first n_sink entries (attention sinks) and the most recent
// entries up to the budget; the same entries in every head.
#include <cfloat>
#include <memory>

#include "core/kv/scored_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class StreamingCompressor final : public ScoredCompressor {
 public:
  StreamingCompressor(KvBudget b, int64_t n_sink) : ScoredCompressor(std::move(b)), n_sink_(n_sink) {}

 protected:
  // Sinks outrank everything; the others rank by recency (entries are stored in token order).
  void score(const KvStep& s, std::vector<std::vector<float>>& scores) const override {
    for (auto& sc : scores)
      for (int64_t j = 0; j < s.kv.length; ++j) sc[size_t(j)] = j < n_sink_ ? FLT_MAX : float(j);
  }

 private:
  int64_t n_sink_;
};

}  // namespace

void register_kv_streaming(Catalog& catalog) {
  ParamSchema schema = KvBudget::schema({}, 0);
  schema.push_back(ParamSpec::Int("n_sink", 4, 0, std::nullopt, "initial entries always kept (attention sinks)"));
  catalog.kv.add({"streaming", 1, "StreamingLLM: n_sink initial entries plus a recent window up to the budget", schema},
                 [](const Params& p) {
                   return std::make_unique<StreamingCompressor>(KvBudget::from(p, "kv plugin 'streaming'"),
                                                                p.get_int("n_sink"));
                 });
}

}  // namespace ctx
