// Sentence-level BLEU exactly as nltk 3.8 `sentence_bleu(references, hypothesis, weights)` with no
// smoothing (SmoothingFunction().method0), the NarrativeQA paper's BLEU-1 / BLEU-4 against all
// references of a case:
// * tokens: Python `text.lower().split()` (str.lower() with full Unicode case mapping, split on
//   Unicode whitespace) -- the tokenisation of this project's NarrativeQA scoring, stated here
//   because nltk takes pre-tokenised lists;
// * weights: BLEU-n uses 1/n for orders 1..n and 0 for the orders up to 4 (BLEU-1 = (1,0,0,0),
//   BLEU-4 = nltk's default (0.25,)*4); a zero weight adds nothing, as in nltk;
// * modified precision per order k = 1..4: hypothesis k-gram counts clipped by their maximum count
//   in any reference, over max(1, number of hypothesis k-grams);
// * 0 when no unigram matches; a precision with no match counts as sys.float_info.min (method0);
// * brevity penalty from the closest reference length (ties to the shorter): 1 when the hypothesis
//   is longer, else exp(1 - r/h);
// * BLEU = bp * exp(fsum(w_k * log(p_k))), fsum correctly rounded like Python's math.fsum.
// Plugin `bleu`: parameter / option "n" (1..4, default 4); keys bleu, brevity_penalty, hyp_len,
// ref_len (closest), precision_1..precision_4 (the modified precisions as doubles, 0 for no match).
// At least one reference is needed (nltk raises otherwise). Pure and thread-safe.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace ctx {

struct BleuResult {
  double bleu = 0, brevity_penalty = 0;
  size_t hyp_len = 0, ref_len = 0;
  std::array<double, 4> precision{};
};

BleuResult sentence_bleu(const std::vector<std::string>& references, std::string_view hypothesis, int n);
// Python math.fsum: the correctly rounded sum.
double py_fsum(const std::vector<double>& values);

}  // namespace ctx
