#include "eval/metrics/meteor.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/register_metric.h"
#include "eval/text/interner.h"
#include "eval/text/porter_stemmer.h"
#include "eval/text/unicode.h"
#include "eval/wordnet/wordnet.h"

namespace ctx {
namespace {

using Match = std::pair<size_t, size_t>;  // (hypothesis index, reference index)

// text.lower().split(), then preprocess=str.lower on every token (a no-op on ASCII tokens).
std::vector<std::string> meteor_tokens(std::string_view utf8) {
  std::vector<std::string> out = text::py_lower_split_utf8(utf8);
  for (auto& t : out)
    if (!text::is_ascii(t)) t = text::u32_to_utf8(text::py_lower(text::utf8_to_u32(t)));
  return out;
}

// One greedy stage of nltk's _match_enums on equal ids: the hypothesis from last to first, each
// taking the last remaining reference word with the same id. `hyp` and `ref` hold the indices of
// the words still unmatched (increasing) and lose the matched ones.
size_t match_equal_ids(std::vector<size_t>& hyp, std::vector<size_t>& ref, const std::vector<uint32_t>& hyp_ids,
                       const std::vector<uint32_t>& ref_ids, size_t vocab, std::vector<Match>& matches) {
  std::vector<std::vector<size_t>> stacks(vocab);
  for (size_t j : ref) stacks[ref_ids[j]].push_back(j);
  std::vector<char> hyp_done(hyp_ids.size(), 0), ref_done(ref_ids.size(), 0);
  size_t found = 0;
  for (size_t k = hyp.size(); k-- > 0;) {
    auto& st = stacks[hyp_ids[hyp[k]]];
    if (st.empty()) continue;
    matches.emplace_back(hyp[k], st.back());
    hyp_done[hyp[k]] = 1;
    ref_done[st.back()] = 1;
    st.pop_back();
    ++found;
  }
  std::erase_if(hyp, [&](size_t i) { return hyp_done[i] != 0; });
  std::erase_if(ref, [&](size_t j) { return ref_done[j] != 0; });
  return found;
}

}  // namespace

MeteorResult single_meteor(std::string_view reference, std::string_view hypothesis, const WordNet& wordnet,
                           const MeteorParams& params) {
  text::porter_stem_memo_trim();
  thread_local text::Interner interner;
  const std::vector<std::string> hw = meteor_tokens(hypothesis), rw = meteor_tokens(reference);
  MeteorResult r;
  r.hyp_len = hw.size();
  r.ref_len = rw.size();
  interner.clear();
  std::vector<uint32_t> hid, rid;
  for (const auto& w : hw) hid.push_back(interner.id(w));
  for (const auto& w : rw) rid.push_back(interner.id(w));
  std::vector<size_t> hyp(hw.size()), ref(rw.size());
  for (size_t i = 0; i < hyp.size(); ++i) hyp[i] = i;
  for (size_t j = 0; j < ref.size(); ++j) ref[j] = j;
  std::vector<Match> matches;
  r.exact = match_equal_ids(hyp, ref, hid, rid, interner.size(), matches);
  // The remaining words become their Porter stems.
  std::vector<std::string_view> hstem(hw.size()), rstem(rw.size());
  for (size_t i : hyp) hid[i] = interner.id(hstem[i] = text::porter_stem_memo(hw[i]));
  for (size_t j : ref) rid[j] = interner.id(rstem[j] = text::porter_stem_memo(rw[j]));
  r.stem = match_equal_ids(hyp, ref, hid, rid, interner.size(), matches);
  interner.clear();
  // nltk _enum_wordnetsyn_match: a reference stem matches when it is the hypothesis stem or one of
  // its WordNet lemma names; the first (from the end) remaining one is taken.
  for (size_t k = hyp.size(); k-- > 0 && !ref.empty();) {
    const std::string h(hstem[hyp[k]]);
    const auto& syn = wordnet.synonyms(h);
    for (size_t l = ref.size(); l-- > 0;) {
      const std::string_view w = rstem[ref[l]];
      if (w != h && !std::binary_search(syn.begin(), syn.end(), w, std::less<>())) continue;
      matches.emplace_back(hyp[k], ref[l]);
      ref.erase(ref.begin() + long(l));
      ++r.synonym;
      break;
    }
  }
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
