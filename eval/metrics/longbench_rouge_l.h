// LongBench v1 `rouge_score`: pltrdy `rouge` 1.0.1 Rouge().get_scores([pred], [gt], avg=True)
// ["rouge-l"]["f"], any exception -> 0.0. Reproduced:
// * sentences: text.split('.'), segments of length > 0 kept *before* " ".join(seg.split()), then
//   words = sentence.split(' ') (so a whitespace-only segment gives one empty-string word);
//   case-sensitive, punctuation attached;
// * m, n = numbers of *distinct* words (exclusive=True); the union of LCS words (a set) over every
//   (reference sentence, prediction sentence) pair, each LCS reconstructed with the tie-break
//   "up if t[i-1][j] > t[i][j-1] else left";
// * f = 2*(p*r)/(p+r+1e-8);
// * no sentence on either side -> 0.0 (pltrdy raises ValueError);
// * CPython's recursion limit: pltrdy reconstructs the LCS recursively, so a pair whose
//   reconstruction path is longer than kRecursionSteps raises RecursionError -> 0.0 in LongBench.
// Pure and thread-safe.
#pragma once

#include <string_view>

namespace ctx {

struct LongBenchRougeL {
  double score = 0;                // as the official LongBench run (recursion limit applied)
  double unbounded_recursion = 0;  // the same without a recursion limit
};

LongBenchRougeL longbench_rouge_l(std::string_view prediction, std::string_view ground_truth);

}  // namespace ctx
