#include "eval/metrics/token_f1.h"

#include <cstdint>

#include "eval/text/interner.h"

namespace ctx {

TokenF1 token_f1(const text::TokenList& prediction, const text::TokenList& gold) {
  thread_local text::Interner ids;
  thread_local std::vector<int64_t> budget;
  ids.clear();
  thread_local std::vector<uint32_t> gold_ids;
  gold_ids.clear();
  gold_ids.reserve(gold.size());
  for (size_t k = 0; k < gold.size(); ++k) gold_ids.push_back(ids.id(gold[k]));
  budget.assign(ids.size(), 0);
  for (uint32_t g : gold_ids) ++budget[g];
  int64_t common = 0;
  for (size_t k = 0; k < prediction.size(); ++k) {
    const uint32_t p = ids.id(prediction[k]);
    if (p < budget.size() && budget[p] > 0) {
      --budget[p];
      ++common;
    }
  }
  ids.clear();
  if (common == 0) return {};
  TokenF1 r;
  r.precision = 1.0 * double(common) / double(prediction.size());
  r.recall = 1.0 * double(common) / double(gold.size());
  r.f1 = (2 * r.precision * r.recall) / (r.precision + r.recall);
  return r;
}

}  // namespace ctx
