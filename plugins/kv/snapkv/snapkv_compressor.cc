// `snapkv` (SnapKV): the last window_size queries of the step (the observation window) vote for
// earlier entries with their softmax attention, averaged over the window and over the query heads
// of each KV head; the votes are pooled (avg or max over kernel_size neighbours, zero-padded for
// avg) so that kept entries come with their context, and the window's own entries always survive.
// Each KV head keeps its own entries. On a decode step (every > 0) the window is the one new query.
#include <algorithm>
#include <cfloat>
#include <memory>

#include "core/base/error.h"
#include "core/kv/attention_probs.h"
#include "core/kv/scored_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class SnapKvCompressor final : public ScoredCompressor {
 public:
  SnapKvCompressor(KvBudget b, int64_t window, int64_t kernel, bool max_pool)
      : ScoredCompressor(std::move(b)), window_(window), kernel_(kernel), max_pool_(max_pool) {}

 protected:
  void score(const KvStep& s, std::vector<std::vector<float>>& scores) const override {
    const int64_t w = std::min(window_, s.n_new), prefix = s.kv.length - w, half = kernel_ / 2;
    std::vector<std::vector<float>> votes;
    accumulate_attention(s, s.n_new - w, s.n_new, votes);
    for (int64_t h = 0; h < s.num_kv_heads; ++h) {
      const std::vector<float>& v = votes[size_t(h)];
      std::vector<float>& sc = scores[size_t(h)];
      for (int64_t j = 0; j < prefix; ++j) {
        const int64_t lo = std::max<int64_t>(0, j - half), hi = std::min(prefix, j + half + 1);
        float pooled = max_pool_ ? -FLT_MAX : 0.0f;
        for (int64_t i = lo; i < hi; ++i) pooled = max_pool_ ? std::max(pooled, v[size_t(i)]) : pooled + v[size_t(i)];
        sc[size_t(j)] = max_pool_ ? pooled : pooled / float(kernel_);
      }
      std::fill(sc.begin() + prefix, sc.end(), FLT_MAX);
    }
  }

 private:
  int64_t window_, kernel_;
  bool max_pool_;
};

}  // namespace

void register_kv_snapkv(Catalog& catalog) {
  ParamSchema schema = KvBudget::schema({}, 0);
  schema.push_back(ParamSpec::Int("window_size", 64, 1, std::nullopt, "queries of the observation window"));
  schema.push_back(ParamSpec::Int("kernel_size", 5, 1, std::nullopt, "pooling width over entries (odd)"));
  schema.push_back(ParamSpec::Choice("pooling", "avg", {"avg", "max"}, "pooling of the attention votes"));
  catalog.kv.add({"snapkv", 1, "SnapKV: attention votes of the last window_size queries, pooled, top entries per head",
                  schema},
                 [](const Params& p) {
                   const int64_t kernel = p.get_int("kernel_size");
                   if (kernel % 2 == 0)
                     fail("kv plugin 'snapkv': kernel_size=", kernel, " must be odd (the pooling is centred)");
                   return std::make_unique<SnapKvCompressor>(KvBudget::from(p, "kv plugin 'snapkv'"),
                                                             p.get_int("window_size"), kernel,
                                                             p.get_string("pooling") == "max");
                 });
}

}  // namespace ctx
