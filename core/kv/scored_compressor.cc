#include "core/kv/scored_compressor.h"

#include <algorithm>
#include <numeric>

namespace ctx {

KvKeep ScoredCompressor::after_step(const KvStep& s) const {
  if (budget_.skips(s.layer)) return {};
  observe(s);
  KvLayerState& st = *s.state;
  if (!s.prefill()) {
    ++st.steps_since_compress;
    if (budget_.every == 0 || st.steps_since_compress < budget_.every) return {};
  }
  st.steps_since_compress = 0;
  const int64_t len = s.kv.length, target = budget_.target(s.position);
  if (s.position < budget_.prune_after || len <= target) return {};

  std::vector<std::vector<float>> scores(size_t(s.num_kv_heads), std::vector<float>(size_t(len)));
  score(s, scores);
  const int64_t protect = std::min(target, std::max(budget_.protect_recent, recent(target)));
  const int64_t pick = target - protect, pool = len - protect;
  KvKeep keep{false, target, std::vector<int64_t>(size_t(s.num_kv_heads * target))};
  std::vector<int64_t> order(static_cast<size_t>(pool));
  for (int64_t h = 0; h < s.num_kv_heads; ++h) {
    const std::vector<float>& sc = scores[size_t(h)];
    std::iota(order.begin(), order.end(), int64_t(0));
    std::nth_element(order.begin(), order.begin() + pick, order.end(), [&](int64_t a, int64_t b) {
      return sc[size_t(a)] != sc[size_t(b)] ? sc[size_t(a)] > sc[size_t(b)] : a < b;
    });
    int64_t* out = keep.indices.data() + h * target;
    std::copy(order.begin(), order.begin() + pick, out);
    std::sort(out, out + pick);
    std::iota(out + pick, out + target, pool);
  }
  return keep;
}

}  // namespace ctx
