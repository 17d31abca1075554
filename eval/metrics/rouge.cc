#include "eval/metrics/rouge.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/lcs.h"
#include "eval/metrics/register_metric.h"
#include "eval/text/rouge_tokenizer.h"

namespace ctx {
namespace {

using Ids = std::vector<int32_t>;

// Token strings -> dense ids, shared by both sides of one comparison.
class Interner {
 public:
  Ids ids(const std::vector<std::string>& tokens) {
    Ids out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) out.push_back(map_.emplace(t, int32_t(map_.size())).first->second);
    return out;
  }
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<std::string, int32_t> map_;
};

double fmeasure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

// Multiset overlap of the n-grams of t and p. Unigrams and bigrams use exact integer keys; longer
// n-grams use the id sequence itself.
int64_t ngram_hits(const Ids& t, const Ids& p, size_t n, size_t vocab) {
  if (t.size() < n || p.size() < n) return 0;
  int64_t hits = 0;
  if (n == 1) {
    std::vector<int32_t> budget(vocab, 0);
    for (int32_t x : t) ++budget[size_t(x)];
    for (int32_t x : p)
      if (budget[size_t(x)] > 0) --budget[size_t(x)], ++hits;
    return hits;
  }
  if (n == 2) {
    std::unordered_map<uint64_t, int32_t> budget;
    budget.reserve(t.size());
    for (size_t i = 0; i + 2 <= t.size(); ++i) ++budget[uint64_t(uint32_t(t[i])) << 32 | uint32_t(t[i + 1])];
    for (size_t i = 0; i + 2 <= p.size(); ++i) {
      auto it = budget.find(uint64_t(uint32_t(p[i])) << 32 | uint32_t(p[i + 1]));
      if (it != budget.end() && it->second > 0) --it->second, ++hits;
    }
    return hits;
  }
  std::unordered_map<std::u32string, int32_t> budget;
  for (size_t i = 0; i + n <= t.size(); ++i) ++budget[std::u32string(t.begin() + long(i), t.begin() + long(i + n))];
  for (size_t i = 0; i + n <= p.size(); ++i) {
    auto it = budget.find(std::u32string(p.begin() + long(i), p.begin() + long(i + n)));
    if (it != budget.end() && it->second > 0) --it->second, ++hits;
  }
  return hits;
}

RougeScore score_ngrams(const Ids& target, const Ids& pred, size_t n, size_t vocab) {
  const int64_t hits = ngram_hits(target, pred, n, vocab);
  const int64_t nt = target.size() >= n ? int64_t(target.size() - n + 1) : 0;
  const int64_t np = pred.size() >= n ? int64_t(pred.size() - n + 1) : 0;
  RougeScore s;
  s.precision = double(hits) / double(std::max<int64_t>(np, 1));
  s.recall = double(hits) / double(std::max<int64_t>(nt, 1));
  s.fmeasure = fmeasure(s.precision, s.recall);
  return s;
}

RougeScore score_lcs(const Ids& target, const Ids& pred) {
  if (target.empty() || pred.empty()) return {};
  const double lcs = double(lcs_length(target, pred));
  RougeScore s;
  s.precision = lcs / double(pred.size());
  s.recall = lcs / double(target.size());
  s.fmeasure = fmeasure(s.precision, s.recall);
  return s;
}

std::vector<std::string_view> newline_sentences(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

RougeScore score_lsum(const std::vector<Ids>& ref_sents, const std::vector<Ids>& can_sents, size_t vocab) {
  if (ref_sents.empty() || can_sents.empty()) return {};
  size_t m = 0, n = 0;
  std::vector<int64_t> cnt_r(vocab, 0), cnt_c(vocab, 0);
  for (const auto& s : ref_sents) {
    m += s.size();
    for (int32_t t : s) ++cnt_r[size_t(t)];
  }
  for (const auto& s : can_sents) {
    n += s.size();
    for (int32_t t : s) ++cnt_c[size_t(t)];
  }
  if (m == 0 || n == 0) return {};
  int64_t hits = 0;
  std::vector<char> in_union;
  for (const auto& r : ref_sents) {
    in_union.assign(r.size(), 0);
    for (const auto& c : can_sents)
      for (size_t i : lcs_indices(r, c)) in_union[i] = 1;
    for (size_t i = 0; i < r.size(); ++i) {
      if (!in_union[i]) continue;
      const size_t t = size_t(r[i]);
      if (cnt_c[t] > 0 && cnt_r[t] > 0) {
        ++hits;
        --cnt_c[t];
        --cnt_r[t];
      }
    }
  }
  RougeScore s;
  s.recall = double(hits) / double(m);
  s.precision = double(hits) / double(n);
  s.fmeasure = fmeasure(s.precision, s.recall);
  return s;
}

size_t ngram_order(const std::string& type) {
  if (type.size() == 6 && type.rfind("rouge", 0) == 0 && type[5] >= '1' && type[5] <= '9') return size_t(type[5] - '0');
  return 0;
}

}  // namespace

std::vector<RougeScore> rouge_scores(std::string_view target, std::string_view prediction,
                                     const std::vector<std::string>& rouge_types, bool use_stemmer) {
  Interner interner;
  Ids t, p;
  bool tokens_ready = false;
  std::vector<RougeScore> out;
  for (const auto& type : rouge_types) {
    const size_t n = ngram_order(type);
    if (type != "rougeLsum" && !tokens_ready) {
      if (n == 0 && type != "rougeL") fail("metric 'rouge': unknown rouge type '", type, "' (rouge1..rouge9, rougeL, rougeLsum)");
      t = interner.ids(text::rouge_tokenize(target, use_stemmer));
      p = interner.ids(text::rouge_tokenize(prediction, use_stemmer));
      tokens_ready = true;
    }
    if (type == "rougeL") {
      out.push_back(score_lcs(t, p));
    } else if (type == "rougeLsum") {
      std::vector<Ids> rs, cs;
      for (auto s : newline_sentences(target)) rs.push_back(interner.ids(text::rouge_tokenize(s, use_stemmer)));
      for (auto s : newline_sentences(prediction)) cs.push_back(interner.ids(text::rouge_tokenize(s, use_stemmer)));
      out.push_back(score_lsum(rs, cs, interner.size()));
    } else {
      out.push_back(score_ngrams(t, p, n, interner.size()));
    }
  }
  return out;
}

namespace {

const std::vector<std::string> kDefaultTypes = {"rouge1", "rouge2", "rougeL", "rougeLsum"};

class RougeMetric : public MetricPlugin {
 public:
  explicit RougeMetric(const Params& params) : use_stemmer_(params.get_bool("use_stemmer")) {}
  std::string_view name() const override { return "rouge"; }
  std::vector<std::string> score_keys() const override { return keys(kDefaultTypes); }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json& options) const override {
    if (references.empty()) fail("metric 'rouge': a case needs at least one reference");
    const auto types = option_string_list(options, "rouge_types", "rouge").value_or(kDefaultTypes);
    const bool stem = option_bool(options, "use_stemmer", use_stemmer_, "rouge");
    std::vector<std::vector<RougeScore>> per_ref;
    for (const auto& r : references) per_ref.push_back(rouge_scores(r, prediction, types, stem));
    std::vector<RougeScore> best(types.size());
    for (size_t k = 0; k < types.size(); ++k) {
      size_t arg = 0;  // np.argmax: the first maximum
      for (size_t i = 1; i < per_ref.size(); ++i)
        if (per_ref[i][k].fmeasure > per_ref[arg][k].fmeasure) arg = i;
      best[k] = per_ref[arg][k];
    }
    Scores out = to_scores(types, best);
    if (references.size() > 1)
      for (size_t i = 0; i < per_ref.size(); ++i) append_per_reference(out, to_scores(types, per_ref[i]), i);
    return out;
  }

 private:
  static std::vector<std::string> keys(const std::vector<std::string>& types) {
    std::vector<std::string> k;
    for (const auto& t : types)
      for (const char* s : {"_precision", "_recall", "_fmeasure"}) k.push_back(t + s);
    return k;
  }
  static Scores to_scores(const std::vector<std::string>& types, const std::vector<RougeScore>& v) {
    Scores out;
    for (size_t i = 0; i < types.size(); ++i) {
      out.emplace_back(types[i] + "_precision", v[i].precision);
      out.emplace_back(types[i] + "_recall", v[i].recall);
      out.emplace_back(types[i] + "_fmeasure", v[i].fmeasure);
    }
    return out;
  }
  bool use_stemmer_;
};

}  // namespace

void register_rouge(Catalog& catalog) {
  add_metric<RougeMetric>(catalog, "rouge", "ROUGE-1/2/L/Lsum as Google rouge-score 0.1.2 (P/R/F)",
                          {ParamSpec::Bool("use_stemmer", false, "nltk Porter stemming of tokens longer than 3")});
}

}  // namespace ctx
