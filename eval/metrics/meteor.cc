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

// text.lower().split(), then preprocess=str.lower on every token: it changes only tokens with
// characters other than ASCII and caseless punctuation (lowering is not idempotent everywhere).
void meteor_tokens(std::string_view utf8, text::TokenList& out) {
  text::py_lower_split_utf8(utf8, out);
  if (text::is_ascii_or_caseless_punctuation(out.text())) return;
  thread_local text::TokenList lowered;
  lowered.clear();
  for (size_t k = 0; k < out.size(); ++k) {
    if (text::is_ascii_or_caseless_punctuation(out[k]))
      lowered.push_back(out[k]);
    else
      lowered.push_back(text::u32_to_utf8(text::py_lower(text::utf8_to_u32(out[k]))));
  }
  std::swap(out, lowered);
}

// One greedy stage of nltk's _match_enums on equal ids: the hypothesis from last to first, each
// taking the last remaining reference word with the same id. `hyp` and `ref` hold the indices of
// the words still unmatched (increasing) and lose the matched ones.
size_t match_equal_ids(std::vector<size_t>& hyp, std::vector<size_t>& ref, const std::vector<uint32_t>& hyp_ids,
                       const std::vector<uint32_t>& ref_ids, size_t vocab, std::vector<Match>& matches) {
  // Per id a stack of the remaining reference indices, linked through `below` (index + 1, 0 = none).
  thread_local std::vector<uint32_t> top, below;
  thread_local std::vector<char> hyp_done, ref_done;
  top.assign(vocab, 0);
  below.resize(ref_ids.size());
  for (size_t j : ref) {
    below[j] = top[ref_ids[j]];
    top[ref_ids[j]] = uint32_t(j + 1);
  }
  hyp_done.assign(hyp_ids.size(), 0);
  ref_done.assign(ref_ids.size(), 0);
  size_t found = 0;
  for (size_t k = hyp.size(); k-- > 0;) {
    uint32_t& t = top[hyp_ids[hyp[k]]];
    if (t == 0) continue;
    const size_t j = t - 1;
    matches.emplace_back(hyp[k], j);
    hyp_done[hyp[k]] = 1;
    ref_done[j] = 1;
    t = below[j];
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
  // Buffers reused between calls.
  thread_local text::Interner interner;
  thread_local text::TokenList hw, rw;
  thread_local std::vector<uint32_t> hid, rid;
  thread_local std::vector<size_t> hyp, ref;
  thread_local std::vector<std::string_view> hstem, rstem;
  thread_local std::vector<Match> matches;
  meteor_tokens(hypothesis, hw);
  meteor_tokens(reference, rw);
  MeteorResult r;
  r.hyp_len = hw.size();
  r.ref_len = rw.size();
  interner.clear();
  hid.resize(hw.size());
  rid.resize(rw.size());
  hyp.resize(hw.size());
  ref.resize(rw.size());
  for (size_t i = 0; i < hw.size(); ++i) hid[i] = interner.id(hw[i]), hyp[i] = i;
  for (size_t j = 0; j < rw.size(); ++j) rid[j] = interner.id(rw[j]), ref[j] = j;
  matches.clear();
  r.exact = match_equal_ids(hyp, ref, hid, rid, interner.size(), matches);
  // The remaining words become their Porter stems.
  hstem.resize(hw.size());
  rstem.resize(rw.size());
  for (size_t i : hyp) hid[i] = interner.id(hstem[i] = text::porter_stem_memo(hw[i]));
  for (size_t j : ref) rid[j] = interner.id(rstem[j] = text::porter_stem_memo(rw[j]));
  r.stem = match_equal_ids(hyp, ref, hid, rid, interner.size(), matches);
  // nltk _enum_wordnetsyn_match: a reference stem matches when it is the hypothesis stem or one of
  // its WordNet lemma names; the first (from the end) remaining one is taken. On ids: the hypothesis
  // stem and those of its lemma names that occur here flag their ids while its turn lasts.
  thread_local std::vector<char> is_synonym;
  thread_local std::vector<uint32_t> flagged;
  is_synonym.assign(interner.size(), 0);
  for (size_t k = hyp.size(); k-- > 0 && !ref.empty();) {
    flagged.assign(1, hid[hyp[k]]);
    for (const auto& name : wordnet.synonyms(hstem[hyp[k]]))
      if (const uint32_t id = interner.find(name); id != text::Interner::kNone) flagged.push_back(id);
    for (uint32_t id : flagged) is_synonym[id] = 1;
    for (size_t l = ref.size(); l-- > 0;) {
      if (!is_synonym[rid[ref[l]]]) continue;
      matches.emplace_back(hyp[k], ref[l]);
      ref.erase(ref.begin() + long(l));
      ++r.synonym;
      break;
    }
    for (uint32_t id : flagged) is_synonym[id] = 0;
  }
  interner.clear();
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
