// `random` (baseline): keeps a uniformly random subset of the budget's size per layer and head,
// reproducible from `seed` (the draw depends on seed, layer, head, entry and tokens seen).
#include <memory>

#include "core/kv/random_score.h"
#include "core/kv/scored_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

class RandomCompressor final : public ScoredCompressor {
 public:
  RandomCompressor(KvBudget b, int64_t seed) : ScoredCompressor(std::move(b)), seed_(uint64_t(seed)) {}

 protected:
  void score(const KvStep& s, std::vector<std::vector<float>>& scores) const override {
    const uint64_t base = kv_random_base(seed_, s.layer, s.position);
    for (int64_t h = 0; h < s.num_kv_heads; ++h)
      for (int64_t j = 0; j < s.kv.length; ++j) scores[size_t(h)][size_t(j)] = kv_random_score(base, h, j);
  }

 private:
  uint64_t seed_;
};

}  // namespace

void register_kv_random(Catalog& catalog) {
  ParamSchema schema = KvBudget::schema({}, 0);
  schema.push_back(ParamSpec::Int("seed", 0, 0, std::nullopt, "seed of the random choice"));
  catalog.kv.add({"random", 1, "baseline: a seeded random subset of the budget's size", schema}, [](const Params& p) {
    return std::make_unique<RandomCompressor>(KvBudget::from(p, "kv plugin 'random'"), p.get_int("seed"));
  });
}

}  // namespace ctx
