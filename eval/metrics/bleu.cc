#include "eval/metrics/bleu.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/register_metric.h"
#include "eval/text/interner.h"
#include "eval/text/unicode.h"

namespace ctx {
namespace {

// text.lower().split() as UTF-8 tokens.
std::vector<std::string> bleu_tokens(std::string_view utf8) { return text::py_lower_split_utf8(utf8); }

// A token sequence as the bytes of its 4-byte ids, so that a k-gram is a 4k-byte string_view.
std::string id_bytes(const std::vector<std::string>& tokens, text::Interner& ids) {
  std::string out(tokens.size() * 4, '\0');
  for (size_t i = 0; i < tokens.size(); ++i) {
    const uint32_t id = ids.id(tokens[i]);
    std::memcpy(&out[i * 4], &id, 4);
  }
  return out;
}

struct Precision {
  int64_t numerator = 0, denominator = 1;
};

// nltk modified_precision for order k.
Precision modified_precision(const std::string& hyp, const std::vector<std::string>& refs, size_t k) {
  const size_t width = 4 * k;
  const size_t hyp_ngrams = hyp.size() >= width ? hyp.size() / 4 - k + 1 : 0;
  thread_local text::Interner grams;
  grams.clear();
  std::vector<int64_t> count;
  for (size_t i = 0; i < hyp_ngrams; ++i) {
    const uint32_t g = grams.id(std::string_view(hyp).substr(4 * i, width));
    if (g == count.size()) count.push_back(0);
    ++count[g];
  }
  std::vector<int64_t> max_count(count.size(), 0), ref_count(count.size(), 0);
  for (const auto& ref : refs) {
    std::fill(ref_count.begin(), ref_count.end(), 0);
    const size_t ref_ngrams = ref.size() >= width ? ref.size() / 4 - k + 1 : 0;
    for (size_t i = 0; i < ref_ngrams; ++i)
      if (const uint32_t g = grams.find(std::string_view(ref).substr(4 * i, width)); g != text::Interner::kNone)
        ++ref_count[g];
    for (size_t g = 0; g < count.size(); ++g) max_count[g] = std::max(max_count[g], ref_count[g]);
  }
  Precision p;
  grams.clear();
  for (size_t g = 0; g < count.size(); ++g) p.numerator += std::min(count[g], max_count[g]);
  p.denominator = std::max<int64_t>(1, int64_t(hyp_ngrams));
  return p;
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
  thread_local text::Interner ids;
  ids.clear();
  const auto hyp_tokens = bleu_tokens(hypothesis);
  std::vector<std::vector<std::string>> ref_tokens;
  for (const auto& r : references) ref_tokens.push_back(bleu_tokens(r));
  const std::string hyp = id_bytes(hyp_tokens, ids);
  std::vector<std::string> refs;
  for (const auto& r : ref_tokens) refs.push_back(id_bytes(r, ids));
  ids.clear();

  BleuResult out;
  out.hyp_len = hyp_tokens.size();
  // closest_ref_length: min by (|r - h|, r).
  out.ref_len = ref_tokens[0].size();
  for (const auto& r : ref_tokens) {
    const auto d = [&](size_t len) { return len > out.hyp_len ? len - out.hyp_len : out.hyp_len - len; };
    if (d(r.size()) < d(out.ref_len) || (d(r.size()) == d(out.ref_len) && r.size() < out.ref_len)) out.ref_len = r.size();
  }
  if (out.hyp_len > out.ref_len)
    out.brevity_penalty = 1.0;
  else if (out.hyp_len > 0)
    out.brevity_penalty = std::exp(1.0 - double(out.ref_len) / double(out.hyp_len));

  std::array<Precision, 4> p;
  for (size_t k = 1; k <= 4; ++k) {
    p[k - 1] = modified_precision(hyp, refs, k);
    out.precision[k - 1] = double(p[k - 1].numerator) / double(p[k - 1].denominator);
  }
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
