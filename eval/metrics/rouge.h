// ROUGE exactly as Google's rouge-score 0.1.2 (rouge_scorer.py) with its DefaultTokenizer
// (text/rouge_tokenizer.h):
// * rougeN: n-gram multiset overlap; p = hits/max(#pred n-grams, 1), r = hits/max(#target n-grams, 1).
// * rougeL: LCS of the token sequences; 0 when either side has no tokens.
// * rougeLsum: sentences are text.split("\n") without empty strings (a sentence that tokenises to
//   nothing is kept); summary-level union LCS, each LCS read out with the backtrack tie-break
//   "left if t[i][j-1] > t[i-1][j] else up", union tokens counted while both token budgets last.
// * F = 2*p*r/(p+r), 0 when p+r == 0.
// Plugin `rouge`: keys {rouge1,rouge2,rougeL,rougeLsum}_{precision,recall,fmeasure}; options
// "rouge_types" (list), "use_stemmer" (bool); several references = score_multi (per type the first
// reference with the highest F) plus "@refN" keys.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ctx {

struct RougeScore {
  double precision = 0, recall = 0, fmeasure = 0;
};

// One rouge type ("rouge1".."rouge9", "rougeL", "rougeLsum") of `prediction` against `target`.
// Throws ctx::Error for an unknown type.
std::vector<RougeScore> rouge_scores(std::string_view target, std::string_view prediction,
                                     const std::vector<std::string>& rouge_types, bool use_stemmer);

}  // namespace ctx
