// METEOR exactly as nltk 3.8 `meteor_score` with its defaults (preprocess=str.lower, PorterStemmer()
// in NLTK_EXTENSIONS mode, WordNet 3.0, alpha 0.9, beta 3, gamma 0.5), on tokens text.lower().split():
// * three greedy stages, exact -> Porter stem -> WordNet synonym, each on the words the previous one
//   left; each walks the hypothesis from last to first and, per word, the remaining reference words
//   from last to first, taking the first equal one;
// * the synonym stage compares *stems*: a reference stem matches when it is a lemma name of a synset
//   of wordnet.synsets(hypothesis stem), or the stem itself (wordnet/wordnet.h);
// * chunks: runs of matches (sorted by hypothesis index) with both indices consecutive;
//   P = m/h, R = m/r, fmean = P*R/(alpha*P + (1-alpha)*R), penalty = gamma*(chunks/m)^beta,
//   score = (1-penalty)*fmean; no words or no matches gives 0.
// Plugin `meteor`: keys meteor, hyp_len, ref_len, exact_matches, stem_matches, synonym_matches,
// matches, chunks (with several references: meteor = max, everything per reference as "@refN");
// options alpha, beta, gamma; parameter wordnet_dir.
#pragma once

#include <string>
#include <string_view>

namespace ctx {

class WordNet;

struct MeteorParams {
  double alpha = 0.9, beta = 3.0, gamma = 0.5;
};

struct MeteorResult {
  double meteor = 0;
  size_t hyp_len = 0, ref_len = 0, exact = 0, stem = 0, synonym = 0, chunks = 0;
  size_t matches() const { return exact + stem + synonym; }
};

MeteorResult single_meteor(std::string_view reference, std::string_view hypothesis, const WordNet& wordnet,
                           const MeteorParams& params);

}  // namespace ctx
