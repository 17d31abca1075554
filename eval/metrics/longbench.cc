#include "eval/metrics/longbench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/longbench_rouge_l.h"
#include "eval/metrics/register_metric.h"
#include "eval/metrics/token_f1.h"
#include "eval/text/answer_normalize.h"
#include "eval/text/fuzz_ratio.h"
#include "eval/text/unicode.h"

namespace ctx {
namespace {

// Python re.findall(r"\d+", text) as UTF-8 strings.
std::vector<std::string> decimal_runs(std::string_view utf8) {
  const std::u32string t = text::utf8_to_u32(utf8);
  std::vector<std::string> out;
  for (size_t i = 0; i < t.size();) {
    if (!text::py_is_decimal(t[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < t.size() && text::py_is_decimal(t[j])) ++j;
    out.push_back(text::u32_to_utf8(std::u32string_view(t).substr(i, j - i)));
    i = j;
  }
  return out;
}

double share_equal(const std::vector<std::string>& numbers, std::string_view target) {
  if (numbers.empty()) return 0.0;
  size_t right = 0;
  for (const auto& n : numbers) right += n == target;
  return double(right) / double(numbers.size());
}

// str.lstrip('\n').split('\n')
std::vector<std::string_view> lines_after_leading_newlines(std::string_view s) {
  s.remove_prefix(std::min(s.find_first_not_of('\n'), s.size()));
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find('\n', start);
    out.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

}  // namespace

double longbench_qa_f1(std::string_view prediction, std::string_view gold) {
  thread_local text::TokenList p, g;  // buffers reused between calls
  text::normalize_answer_tokens(prediction, p);
  text::normalize_answer_tokens(gold, g);
  return token_f1(p, g).f1;
}

double longbench_classification(std::string_view prediction, std::string_view gold,
                                const std::vector<std::string>& all_classes) {
  std::vector<std::string> matches;
  for (const auto& c : all_classes)
    if (prediction.find(c) != std::string_view::npos) matches.push_back(c);
  // Python: `for m in list: if cond: list.remove(m)` -- remove() drops the first equal element and
  // the iterator then skips the element that moved into the current slot.
  for (size_t i = 0; i < matches.size(); ++i) {
    const std::string m = matches[i];
    if (gold.find(m) != std::string_view::npos && m != gold)
      matches.erase(std::find(matches.begin(), matches.end(), m));
  }
  if (std::find(matches.begin(), matches.end(), gold) == matches.end()) return 0.0;
  return 1.0 / double(matches.size());
}

double longbench_retrieval(std::string_view prediction, std::string_view gold) {
  // re.findall(r'Paragraph (\d+)', gold)[0]
  const std::u32string g = text::utf8_to_u32(gold);
  const std::u32string_view key = U"Paragraph ";
  for (size_t pos = g.find(key); pos != std::u32string::npos; pos = g.find(key, pos + 1)) {
    size_t j = pos + key.size();
    while (j < g.size() && text::py_is_decimal(g[j])) ++j;
    if (j > pos + key.size())
      return share_equal(decimal_runs(prediction),
                         text::u32_to_utf8(std::u32string_view(g).substr(pos + key.size(), j - pos - key.size())));
  }
  fail("longbench retrieval_score: the reference has no 'Paragraph N'");
}

double longbench_count(std::string_view prediction, std::string_view gold) {
  return share_equal(decimal_runs(prediction), gold);
}

double longbench_code_sim(std::string_view prediction, std::string_view gold, bool levenshtein_backend) {
  std::string_view line;
  for (auto l : lines_after_leading_newlines(prediction)) {
    if (l.find('`') == std::string_view::npos && l.find('#') == std::string_view::npos &&
        l.find("//") == std::string_view::npos) {
      line = l;
      break;
    }
  }
  const int r = text::fuzz_ratio(text::utf8_to_u32(line), text::utf8_to_u32(gold),
                                 levenshtein_backend ? text::FuzzBackend::kLevenshtein : text::FuzzBackend::kDifflib);
  return double(r) / 100;
}

// Python round(x, 2): the decimal rounding of the exact binary value, ties to even -- what glibc's
// printf("%.2f") computes.
double round2(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", x);
  return std::strtod(buf, nullptr);
}

double longbench_task_score(const std::vector<double>& sample_scores) {
  if (sample_scores.empty()) return 0.0;
  double total = 0;
  for (double s : sample_scores) total += s;
  return round2(100 * total / double(sample_scores.size()));
}

double longbench_average(const std::vector<double>& task_scores) {
  if (task_scores.empty()) return 0.0;
  double total = 0;
  for (double s : task_scores) total += s;
  return round2(total / double(task_scores.size()));
}

namespace {

const std::vector<std::string> kMetrics = {"qa_f1_score",     "rouge_score", "classification_score",
                                           "retrieval_score", "count_score", "code_sim_score"};

// `longbench` (the scorer from the option / parameter "metric") or a single-scorer plugin named after
// its scorer (fixed_ set: the option "metric" is ignored).
class LongBenchMetric : public MetricPlugin {
 public:
  explicit LongBenchMetric(const Params& params) : name_("longbench"), default_metric_(params.get_string("metric")) {}
  explicit LongBenchMetric(std::string scorer) : name_(scorer), default_metric_(std::move(scorer)), fixed_(true) {}
  std::string_view name() const override { return name_; }
  std::vector<std::string> score_keys() const override { return {"score"}; }
  Scores scores(std::string_view raw_prediction, const std::vector<std::string>& references,
                const nlohmann::json& options) const override {
    const std::string metric = fixed_ ? default_metric_ : option_string(options, "metric", default_metric_, "longbench");
    if (std::find(kMetrics.begin(), kMetrics.end(), metric) == kMetrics.end())
      fail("metric 'longbench': option 'metric' must be one of qa_f1_score, rouge_score, classification_score, "
           "retrieval_score, count_score, code_sim_score; got '", metric, "'");
    const auto classes = option_string_list(options, "all_classes", "longbench");
    if (metric == "classification_score" && !classes)
      fail("metric 'longbench': classification_score needs option 'all_classes'");
    std::string_view prediction = raw_prediction;
    if (option_bool(options, "first_line_only", false, "longbench"))
      prediction = lines_after_leading_newlines(raw_prediction)[0];

    std::vector<Scores> per_ref;
    for (const auto& gold : references) {
      if (metric == "qa_f1_score") {
        per_ref.push_back({{"score", longbench_qa_f1(prediction, gold)}});
      } else if (metric == "rouge_score") {
        const auto r = longbench_rouge_l(prediction, gold);
        per_ref.push_back({{"score", r.score}, {"score_unbounded_recursion", r.unbounded_recursion}});
      } else if (metric == "classification_score") {
        per_ref.push_back({{"score", longbench_classification(prediction, gold, *classes)}});
      } else if (metric == "retrieval_score") {
        per_ref.push_back({{"score", longbench_retrieval(prediction, gold)}});
      } else if (metric == "count_score") {
        per_ref.push_back({{"score", longbench_count(prediction, gold)}});
      } else {
        per_ref.push_back({{"score", longbench_code_sim(prediction, gold, false)},
                           {"score_levenshtein", longbench_code_sim(prediction, gold, true)}});
      }
    }
    // eval.py: score = 0; for each gold: score = max(score, metric(...)), for every key alike.
    Scores out;
    const Scores& keys = per_ref.empty() ? Scores{{"score", 0.0}} : per_ref[0];
    for (const auto& [k, unused] : keys) {
      double best = 0.0;
      for (const auto& s : per_ref) best = std::max(best, score_of(s, k));
      out.emplace_back(k, best);
    }
    if (references.size() > 1)
      for (size_t i = 0; i < per_ref.size(); ++i) append_per_reference(out, per_ref[i], i);
    return out;
  }

 private:
  std::string name_, default_metric_;
  bool fixed_ = false;
};

}  // namespace

void register_longbench(Catalog& catalog) {
  add_metric<LongBenchMetric>(
      catalog, "longbench", "LongBench v1 English scorers (qa_f1, rouge, classification, retrieval, count, code_sim)",
      {ParamSpec::Choice("metric", "qa_f1_score", kMetrics, "scorer used when a case's options name none")});
  for (const auto& scorer : kMetrics)
    catalog.metric.add(PluginInfo{scorer, 1, "LongBench v1 " + scorer + " alone, as in plugin longbench", {}},
                       [scorer](const Params&) -> std::unique_ptr<MetricPlugin> {
                         return std::make_unique<LongBenchMetric>(scorer);
                       });
}

}  // namespace ctx
