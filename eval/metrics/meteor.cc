#include "eval/metrics/meteor.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/register_metric.h"
#include "eval/text/porter_stemmer.h"
#include "eval/text/unicode.h"
#include "eval/wordnet/wordnet.h"

namespace ctx {
namespace {

struct Word {
  size_t index;
  std::string text;
};
using Match = std::pair<size_t, size_t>;  // (hypothesis index, reference index)

// text.lower().split(), then preprocess=str.lower on every token.
std::vector<Word> meteor_tokens(std::string_view utf8) {
  std::vector<Word> out;
  for (const auto& t : text::py_split(text::py_lower(text::utf8_to_u32(utf8))))
    out.push_back({out.size(), text::u32_to_utf8(text::py_lower(t))});
  return out;
}

// nltk _match_enums (and the synonym stage when `synonyms` is set): removes matched words from both.
template <class Equal>
size_t greedy_match(std::vector<Word>& hyp, std::vector<Word>& ref, std::vector<Match>& matches, Equal&& equal) {
  size_t found = 0;
  for (size_t i = hyp.size(); i-- > 0;) {
    for (size_t j = ref.size(); j-- > 0;) {
      if (!equal(hyp[i].text, ref[j].text)) continue;
      matches.emplace_back(hyp[i].index, ref[j].index);
      hyp.erase(hyp.begin() + long(i));
      ref.erase(ref.begin() + long(j));
      ++found;
      break;
    }
  }
  return found;
}

}  // namespace

MeteorResult single_meteor(std::string_view reference, std::string_view hypothesis, const WordNet& wordnet,
                           const MeteorParams& params) {
  std::vector<Word> hyp = meteor_tokens(hypothesis), ref = meteor_tokens(reference);
  MeteorResult r;
  r.hyp_len = hyp.size();
  r.ref_len = ref.size();
  std::vector<Match> matches;
  auto same = [](const std::string& a, const std::string& b) { return a == b; };
  r.exact = greedy_match(hyp, ref, matches, same);
  for (auto* side : {&hyp, &ref})
    for (auto& w : *side) w.text = text::porter_stem_memo(w.text);
  r.stem = greedy_match(hyp, ref, matches, same);
  r.synonym = greedy_match(hyp, ref, matches, [&](const std::string& h, const std::string& rw) {
    if (h == rw) return true;
    const auto& syn = wordnet.synonyms(h);
    return std::binary_search(syn.begin(), syn.end(), rw);
  });
  const size_t m = matches.size();
  if (m == 0 || r.hyp_len == 0 || r.ref_len == 0) return r;
  std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) { return a.first < b.first; });
  r.chunks = 1;
  for (size_t i = 0; i + 1 < m; ++i)
    if (!(matches[i + 1].first == matches[i].first + 1 && matches[i + 1].second == matches[i].second + 1)) ++r.chunks;
  const double precision = double(m) / double(r.hyp_len), recall = double(m) / double(r.ref_len);
  const double fmean = (precision * recall) / (params.alpha * precision + (1 - params.alpha) * recall);
  const double frag = double(r.chunks) / double(m);
  const double penalty = params.gamma * std::pow(frag, params.beta);
  r.meteor = (1 - penalty) * fmean;
  return r;
}

namespace {

class MeteorMetric : public MetricPlugin {
 public:
  explicit MeteorMetric(const Params& params) : wordnet_dir_(params.get_string("wordnet_dir")) {
    defaults_.alpha = params.get_float("alpha");
    defaults_.beta = params.get_float("beta");
    defaults_.gamma = params.get_float("gamma");
  }
  std::string_view name() const override { return "meteor"; }
  std::vector<std::string> score_keys() const override {
    return {"meteor", "hyp_len", "ref_len", "exact_matches", "stem_matches", "synonym_matches", "matches", "chunks"};
  }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json& options) const override {
    if (references.empty()) fail("metric 'meteor': a case needs at least one reference");
    MeteorParams p;
    p.alpha = option_double(options, "alpha", defaults_.alpha, "meteor");
    p.beta = option_double(options, "beta", defaults_.beta, "meteor");
    p.gamma = option_double(options, "gamma", defaults_.gamma, "meteor");
    const WordNet& wordnet = WordNet::shared(wordnet_dir_);
    if (references.size() == 1) return to_scores(single_meteor(references[0], prediction, wordnet, p));
    Scores per_ref;
    double best = 0;
    for (size_t i = 0; i < references.size(); ++i) {
      const MeteorResult r = single_meteor(references[i], prediction, wordnet, p);
      best = i == 0 ? r.meteor : std::max(best, r.meteor);
      append_per_reference(per_ref, to_scores(r), i);
    }
    Scores out{{"meteor", best}};
    out.insert(out.end(), per_ref.begin(), per_ref.end());
    return out;
  }

 private:
  static Scores to_scores(const MeteorResult& r) {
    return {{"meteor", r.meteor},           {"hyp_len", double(r.hyp_len)},       {"ref_len", double(r.ref_len)},
            {"exact_matches", double(r.exact)}, {"stem_matches", double(r.stem)}, {"synonym_matches", double(r.synonym)},
            {"matches", double(r.matches())},   {"chunks", double(r.chunks)}};
  }
  std::string wordnet_dir_;
  MeteorParams defaults_;
};

}  // namespace

void register_meteor(Catalog& catalog) {
  add_metric<MeteorMetric>(catalog, "meteor", "METEOR as nltk 3.8 meteor_score (exact, Porter stem, WordNet synonyms)",
                           {ParamSpec::Float("alpha", 0.9, 0.0, 1.0, "precision/recall weight"),
                            ParamSpec::Float("beta", 3.0, 0.0, std::nullopt, "fragmentation penalty exponent"),
                            ParamSpec::Float("gamma", 0.5, 0.0, 1.0, "fragmentation penalty weight"),
                            ParamSpec::String("wordnet_dir", "/usr/share/wordnet",
                                              "WordNet 3.0 database files (Debian wordnet-base)")});
}

}  // namespace ctx
