// Token-multiset F1 as in the SQuAD v1.1 / HotpotQA / LongBench scripts:
// common = |Counter(pred) & Counter(gold)|; no common token gives (0, 0, 0); otherwise
// p = common/len(pred), r = common/len(gold), f1 = 2*p*r/(p+r), in double as Python computes them.
// Pure and thread-safe.
#pragma once

#include "eval/text/token_list.h"

namespace ctx {

struct TokenF1 {
  double f1 = 0, precision = 0, recall = 0;
};

TokenF1 token_f1(const text::TokenList& prediction, const text::TokenList& gold);

}  // namespace ctx
