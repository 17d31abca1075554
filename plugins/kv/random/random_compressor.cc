// `random` (baseline): keeps a uniformly random subset of the budget's size per layer and head,
// reproducible from `seed` (the draw depends on seed, layer, head, entry and tokens seen).
#include <memory>

#include "core/kv/scored_compressor.h"
#include "core/plugin/catalog.h"

namespace ctx {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class RandomCompressor final : public ScoredCompressor {
 public:
  RandomCompressor(KvBudget b, int64_t seed) : ScoredCompressor(std::move(b)), seed_(uint64_t(seed)) {}

 protected:
  void score(const KvStep& s, std::vector<std::vector<float>>& scores) const override {
    const uint64_t base = mix(mix(seed_ ^ mix(uint64_t(s.layer))) ^ uint64_t(s.position));
    for (int64_t h = 0; h < s.num_kv_heads; ++h)
      for (int64_t j = 0; j < s.kv.length; ++j)
        scores[size_t(h)][size_t(j)] = float(mix(base ^ mix(uint64_t(h) << 32 ^ uint64_t(j))) >> 40);
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
