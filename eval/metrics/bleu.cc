#include "eval/metrics/bleu.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/register_metric.h"
#include "eval/text/interner.h"
#include "eval/text/unicode.h"

namespace ctx {
namespace {

using Ids = std::vector<uint32_t>;

struct Precision {
  int64_t numerator = 0, denominator = 1;
};

// nltk modified_precision for the orders 1..4, on dense ids: a k-gram's id is the PairInterner id of
// (id of its first k-1 tokens, its last token), so `grams[i]` holds the id of the gram starting at
// token i, order by order. The hypothesis is interned first: its grams have the ids below its count.
std::array<Precision, 4> modified_precisions(const Ids& hyp, const std::vector<Ids>& refs, size_t vocab) {
  thread_local text::PairInterner interner;
  thread_local std::vector<Ids> grams;  // [0] the hypothesis, then the references
  thread_local std::vector<int64_t> count, max_count, ref_count;
  grams.resize(refs.size() + 1);
  grams[0] = hyp;
  for (size_t r = 0; r < refs.size(); ++r) grams[r + 1] = refs[r];
  std::array<Precision, 4> out;
  for (size_t k = 1; k <= 4; ++k) {
    size_t distinct = vocab;  // order 1: the token ids themselves
    if (k > 1) {
      interner.clear();
      auto extend = [&](Ids& g, const Ids& tokens) {  // (k-1)-gram ids -> k-gram ids
        g.resize(tokens.size() >= k ? tokens.size() - k + 1 : 0);
        for (size_t i = 0; i < g.size(); ++i) g[i] = interner.id(g[i], tokens[i + k - 1]);
      };
      extend(grams[0], hyp);
      distinct = interner.size();
      for (size_t r = 0; r < refs.size(); ++r) extend(grams[r + 1], refs[r]);
    }
    count.assign(distinct, 0);
    max_count.assign(distinct, 0);
    for (uint32_t g : grams[0]) ++count[g];
    for (size_t r = 1; r < grams.size(); ++r) {
      ref_count.assign(distinct, 0);
      for (uint32_t g : grams[r])
        if (g < distinct) ++ref_count[g];
      for (size_t g = 0; g < distinct; ++g) max_count[g] = std::max(max_count[g], ref_count[g]);
    }
    Precision& p = out[k - 1];
    for (size_t g = 0; g < distinct; ++g) p.numerator += std::min(count[g], max_count[g]);
    p.denominator = std::max<int64_t>(1, int64_t(grams[0].size()));
  }
  return out;
}

}  // namespace

double py_fsum(const std::vector<double>& values) {
  // Shewchuk's exact partial sums (non-overlapping, increasing magnitude), then the round-half-even
  // correction of the final addition.
  std::vector<double> partials;
  for (double x : values) {
    size_t i = 0;
    for (double y : partials) {
      if (std::fabs(x) < std::fabs(y)) std::swap(x, y);
      const double hi = x + y, lo = y - (hi - x);
      if (lo != 0.0) partials[i++] = lo;
      x = hi;
    }
    partials.resize(i);
    partials.push_back(x);
  }
  size_t n = partials.size();
  if (n == 0) return 0.0;
  double hi = partials[--n], lo = 0;
  while (n > 0) {
    const double x = hi, y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo != 0.0) break;
  }
  if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
    const double y = lo * 2, x = hi + y;
    if (y == x - hi) hi = x;
  }
  return hi;
}

BleuResult sentence_bleu(const std::vector<std::string>& references, std::string_view hypothesis, int n) {
  if (references.empty()) fail("metric 'bleu': a case needs at least one reference");
  if (n < 1 || n > 4) fail("metric 'bleu': n must be 1..4, got ", n);
  // text.lower().split() of every text as dense token ids.
  thread_local text::TokenList hyp_tokens;
  thread_local std::vector<text::TokenList> ref_tokens;
  thread_local text::Interner interner;
  thread_local Ids hyp;
  thread_local std::vector<Ids> refs;
  text::py_lower_split_utf8(hypothesis, hyp_tokens);
  if (ref_tokens.size() < references.size()) ref_tokens.resize(references.size());
  refs.resize(references.size());
  interner.clear();
  hyp.clear();
  for (size_t i = 0; i < hyp_tokens.size(); ++i) hyp.push_back(interner.id(hyp_tokens[i]));
  for (size_t r = 0; r < references.size(); ++r) {
    text::py_lower_split_utf8(references[r], ref_tokens[r]);
    refs[r].clear();
    for (size_t i = 0; i < ref_tokens[r].size(); ++i) refs[r].push_back(interner.id(ref_tokens[r][i]));
  }
  const size_t vocab = interner.size();
  interner.clear();

  BleuResult out;
  out.hyp_len = hyp.size();
  // closest_ref_length: min by (|r - h|, r).
  out.ref_len = refs[0].size();
  for (const auto& r : refs) {
    const auto d = [&](size_t len) { return len > out.hyp_len ? len - out.hyp_len : out.hyp_len - len; };
    if (d(r.size()) < d(out.ref_len) || (d(r.size()) == d(out.ref_len) && r.size() < out.ref_len)) out.ref_len = r.size();
  }
  if (out.hyp_len > out.ref_len)
    out.brevity_penalty = 1.0;
  else if (out.hyp_len > 0)
    out.brevity_penalty = std::exp(1.0 - double(out.ref_len) / double(out.hyp_len));

  const std::array<Precision, 4> p = modified_precisions(hyp, refs, vocab);
  for (size_t k = 0; k < 4; ++k) out.precision[k] = double(p[k].numerator) / double(p[k].denominator);
  if (p[0].numerator == 0) return out;  // bleu 0
  std::vector<double> terms;
  for (size_t k = 0; k < 4; ++k) {
    const double w = k < size_t(n) ? 1.0 / double(n) : 0.0;
    const double pk = p[k].numerator != 0 ? out.precision[k] : DBL_MIN;  // method0
    terms.push_back(w * std::log(pk));
  }
  out.bleu = out.brevity_penalty * std::exp(py_fsum(terms));
  return out;
}

namespace {

class BleuMetric : public MetricPlugin {
 public:
  explicit BleuMetric(const Params& params) : n_(int(params.get_int("n"))) {}
  std::string_view name() const override { return "bleu"; }
  std::vector<std::string> score_keys() const override {
    return {"bleu", "brevity_penalty", "hyp_len", "ref_len", "precision_1", "precision_2", "precision_3", "precision_4"};
  }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json& options) const override {
    const double n = option_double(options, "n", double(n_), "bleu");
    if (n != std::floor(n) || n < 1 || n > 4) fail("metric 'bleu': option 'n' must be 1, 2, 3 or 4");
    const BleuResult r = sentence_bleu(references, prediction, int(n));
    Scores out{{"bleu", r.bleu}, {"brevity_penalty", r.brevity_penalty}, {"hyp_len", double(r.hyp_len)},
               {"ref_len", double(r.ref_len)}};
    for (size_t k = 0; k < 4; ++k) out.emplace_back("precision_" + std::to_string(k + 1), r.precision[k]);
    return out;
  }

 private:
  int n_;
};

}  // namespace

void register_bleu(Catalog& catalog) {
  add_metric<BleuMetric>(catalog, "bleu", "sentence BLEU-n as nltk 3.8 sentence_bleu, no smoothing (NarrativeQA BLEU-1/4)",
                         {ParamSpec::Int("n", 4, 1.0, 4.0, "highest n-gram order, uniform weights 1/n")});
}

}  // namespace ctx
