#include "eval/metrics/rouge.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <span>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/lcs.h"
#include "eval/metrics/register_metric.h"
#include "eval/text/interner.h"
#include "eval/text/porter_stemmer.h"
#include "eval/text/rouge_tokenizer.h"

namespace ctx {
namespace {

using Ids = std::vector<uint32_t>;
using IdSpan = std::span<const uint32_t>;

double fmeasure(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

// Multiset overlap of the n-grams of t and p (token ids < vocab). Order 1 counts token ids; an
// n-gram of order k > 1 gets the PairInterner id of (id of its first k-1 tokens, last token), so
// every order counts dense integer ids.
int64_t ngram_hits(const Ids& t, const Ids& p, size_t n, size_t vocab) {
  if (t.size() < n || p.size() < n) return 0;
  thread_local text::PairInterner interner;
  thread_local Ids gt, gp;  // ids of the grams starting at each position
  thread_local std::vector<int32_t> budget;
  gt = t;
  gp = p;
  for (size_t k = 2; k <= n; ++k) {
    interner.clear();
    gt.resize(t.size() - k + 1);
    gp.resize(p.size() - k + 1);
    for (size_t i = 0; i < gt.size(); ++i) gt[i] = interner.id(gt[i], t[i + k - 1]);
    for (size_t i = 0; i < gp.size(); ++i) gp[i] = interner.id(gp[i], p[i + k - 1]);
  }
  budget.assign(n == 1 ? vocab : interner.size(), 0);
  for (uint32_t x : gt) ++budget[x];
  int64_t hits = 0;
  for (uint32_t x : gp)
    if (budget[x] > 0) --budget[x], ++hits;
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

RougeScore score_lcs(const Ids& target, const Ids& pred, size_t vocab) {
  if (target.empty() || pred.empty()) return {};
  const double lcs = double(lcs_length(target, pred, vocab));
  RougeScore s;
  s.precision = lcs / double(pred.size());
  s.recall = lcs / double(target.size());
  s.fmeasure = fmeasure(s.precision, s.recall);
  return s;
}

void sentences(const Ids& ids, const std::vector<uint32_t>& ends, std::vector<IdSpan>& out) {
  out.clear();
  uint32_t begin = 0;
  for (uint32_t end : ends) {
    out.push_back(IdSpan(ids).subspan(begin, end - begin));
    begin = end;
  }
}

RougeScore score_lsum(const std::vector<IdSpan>& ref_sents, const std::vector<IdSpan>& can_sents, size_t vocab) {
  if (ref_sents.empty() || can_sents.empty()) return {};
  size_t m = 0, n = 0;
  thread_local std::vector<int64_t> cnt_r, cnt_c;
  thread_local std::vector<char> in_union;
  thread_local LcsTable table;
  cnt_r.assign(vocab, 0);
  cnt_c.assign(vocab, 0);
  for (const auto& s : ref_sents) {
    m += s.size();
    for (uint32_t t : s) ++cnt_r[t];
  }
  for (const auto& s : can_sents) {
    n += s.size();
    for (uint32_t t : s) ++cnt_c[t];
  }
  if (m == 0 || n == 0) return {};
  // Union LCS: in_union marks the reference positions (all sentences back to back) that some
  // candidate sentence's LCS takes. Marks are order-independent, so the candidate sentences go
  // outermost: a reference sentence none of whose unmarked tokens occur in the candidate sentence
  // cannot gain a mark from it, and is skipped without building its table.
  thread_local std::vector<uint32_t> in_sentence;  // the last candidate sentence holding each token
  in_sentence.assign(vocab, UINT32_MAX);
  in_union.assign(m, 0);
  table.set_alphabet(vocab);
  for (size_t k = 0; k < can_sents.size(); ++k) {
    const IdSpan c = can_sents[k];
    for (uint32_t t : c) in_sentence[t] = uint32_t(k);
    size_t offset = 0;
    for (const IdSpan r : ref_sents) {
      char* marks = in_union.data() + offset;
      offset += r.size();
      bool adds = false;
      for (size_t i = 0; i < r.size() && !adds; ++i) adds = in_sentence[r[i]] == k && !marks[i];
      if (!adds) continue;
      table.build(r, c);
      rouge_backtrack_each(
          r, c, [&](size_t i, size_t j) { return table.at(i, j); }, [&](size_t i) { marks[i] = 1; });
    }
  }
  // Union tokens counted in reference order while both token budgets last.
  int64_t hits = 0;
  size_t offset = 0;
  for (const IdSpan r : ref_sents)
    for (uint32_t t : r) {
      if (in_union[offset++] && cnt_c[t] > 0 && cnt_r[t] > 0) {
        ++hits;
        --cnt_c[t];
        --cnt_r[t];
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
  for (const auto& type : rouge_types)
    if (ngram_order(type) == 0 && type != "rougeL" && type != "rougeLsum")
      fail("metric 'rouge': unknown rouge type '", type, "' (rouge1..rouge9, rougeL, rougeLsum)");
  text::porter_stem_memo_trim();
  // Buffers reused between calls.
  thread_local text::Interner interner;
  thread_local text::RougeTokens tt, pt;
  thread_local Ids t, p;
  thread_local std::vector<IdSpan> ts, ps;
  text::rouge_tokenize(target, use_stemmer, tt);
  text::rouge_tokenize(prediction, use_stemmer, pt);
  interner.clear();
  t.clear();
  p.clear();
  for (auto tok : tt.tokens) t.push_back(interner.id(tok));
  for (auto tok : pt.tokens) p.push_back(interner.id(tok));
  const size_t vocab = interner.size();
  std::vector<RougeScore> out;
  for (const auto& type : rouge_types) {
    if (type == "rougeL") {
      out.push_back(score_lcs(t, p, vocab));
    } else if (type == "rougeLsum") {
      sentences(t, tt.sentence_ends, ts);
      sentences(p, pt.sentence_ends, ps);
      out.push_back(score_lsum(ts, ps, vocab));
    } else {
      out.push_back(score_ngrams(t, p, ngram_order(type), vocab));
    }
  }
  interner.clear();
  return out;
}

namespace {

const std::vector<std::string> kDefaultTypes = {"rouge1", "rouge2", "rougeL", "rougeLsum"};

// `rouge` (types from the option "rouge_types", default all four) or a single-type plugin named
// after its type (the option is ignored).
class RougeMetric : public MetricPlugin {
 public:
  RougeMetric(const Params& params, std::string name, std::vector<std::string> types)
      : name_(std::move(name)), types_(std::move(types)), use_stemmer_(params.get_bool("use_stemmer")) {}
  std::string_view name() const override { return name_; }
  std::vector<std::string> score_keys() const override { return keys(types_); }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json& options) const override {
    if (references.empty()) fail("metric '", name_, "': a case needs at least one reference");
    const auto types =
        name_ == "rouge" ? option_string_list(options, "rouge_types", "rouge").value_or(types_) : types_;
    const bool stem = option_bool(options, "use_stemmer", use_stemmer_, name_);
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
  std::string name_;
  std::vector<std::string> types_;
  bool use_stemmer_;
};

}  // namespace

void register_rouge(Catalog& catalog) {
  auto add = [&](const std::string& name, std::vector<std::string> types, std::string help) {
    catalog.metric.add(
        PluginInfo{name, 1, std::move(help), {ParamSpec::Bool("use_stemmer", false, "nltk Porter stemming of tokens longer than 3")}},
        [name, types](const Params& params) -> std::unique_ptr<MetricPlugin> {
          return std::make_unique<RougeMetric>(params, name, types);
        });
  };
  add("rouge", kDefaultTypes, "ROUGE-1/2/L/Lsum as Google rouge-score 0.1.2 (P/R/F)");
  for (const auto& type : kDefaultTypes) add(type, {type}, type + " alone, as in plugin rouge (P/R/F)");
}

}  // namespace ctx
