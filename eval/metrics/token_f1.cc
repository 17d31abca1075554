#include "eval/metrics/token_f1.h"

#include <algorithm>
#include <unordered_map>

namespace ctx {

TokenF1 token_f1(const std::vector<std::u32string>& prediction, const std::vector<std::u32string>& gold) {
  std::unordered_map<std::u32string_view, int64_t> gold_counts;
  for (const auto& t : gold) ++gold_counts[t];
  int64_t common = 0;
  for (const auto& t : prediction) {
    auto it = gold_counts.find(t);
    if (it != gold_counts.end() && it->second > 0) {
      --it->second;
      ++common;
    }
  }
  if (common == 0) return {};
  TokenF1 r;
  r.precision = 1.0 * double(common) / double(prediction.size());
  r.recall = 1.0 * double(common) / double(gold.size());
  r.f1 = (2 * r.precision * r.recall) / (r.precision + r.recall);
  return r;
}

}  // namespace ctx
