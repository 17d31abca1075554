#include "eval/metrics/choice_accuracy.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "eval/metric_options.h"
#include "eval/metrics/register_metric.h"

namespace ctx {

std::optional<char> longbench_v2_extract(std::string_view response) {
  std::string text;
  text.reserve(response.size());
  for (char c : response)
    if (c != '*') text.push_back(c);
  constexpr std::string_view kLead = "The correct answer is ";
  auto letter = [](char c) { return c >= 'A' && c <= 'D'; };
  for (size_t pos = text.find(kLead); pos != std::string::npos; pos = text.find(kLead, pos + 1)) {
    const size_t k = pos + kLead.size();
    if (k + 2 < text.size() && text[k] == '(' && letter(text[k + 1]) && text[k + 2] == ')') return text[k + 1];
  }
  for (size_t pos = text.find(kLead); pos != std::string::npos; pos = text.find(kLead, pos + 1)) {
    const size_t k = pos + kLead.size();
    if (k < text.size() && letter(text[k])) return text[k];
  }
  return std::nullopt;
}

double py_round(double x, int digits) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return std::strtod(buf, nullptr);
}

LongBenchV2Table longbench_v2_table(const std::vector<LongBenchV2Item>& items, bool compensated) {
  double sum[5] = {0, 0, 0, 0, 0};  // easy, hard, short, medium, long
  size_t count[5] = {0, 0, 0, 0, 0};
  for (const auto& it : items) {
    const double acc = compensated && !it.answered ? 0.25 : it.correct ? 1.0 : 0.0;
    const size_t d = it.difficulty == "easy" ? 0 : 1;
    const size_t l = it.length == "short" ? 2 : it.length == "medium" ? 3 : 4;
    for (size_t g : {d, l}) sum[g] += acc, ++count[g];
  }
  auto pct = [](double s, size_t n) { return n == 0 ? NAN : py_round(100 * s / double(n), 1); };
  LongBenchV2Table t;
  t.overall = pct(sum[0] + sum[1], items.size());
  t.easy = pct(sum[0], count[0]);
  t.hard = pct(sum[1], count[1]);
  t.short_ = pct(sum[2], count[2]);
  t.medium = pct(sum[3], count[3]);
  t.long_ = pct(sum[4], count[4]);
  return t;
}

namespace {

class LongBenchV2Metric : public MetricPlugin {
 public:
  explicit LongBenchV2Metric(const Params&) {}
  std::string_view name() const override { return "longbench_v2"; }
  std::vector<std::string> score_keys() const override { return {"accuracy", "answered"}; }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json& options) const override {
    if (references.empty()) fail("metric 'longbench_v2': a case needs the gold letter as its reference");
    const auto pred = longbench_v2_extract(prediction);
    double acc = 0;
    for (const auto& gold : references) acc = std::max(acc, pred && gold == std::string(1, *pred) ? 1.0 : 0.0);
    if (!pred && option_bool(options, "compensated", false, "longbench_v2")) acc = 0.25;
    Scores out{{"accuracy", acc}, {"answered", pred ? 1.0 : 0.0}};
    const std::string difficulty = option_string(options, "difficulty", "", "longbench_v2");
    const std::string length = option_string(options, "length", "", "longbench_v2");
    if (!difficulty.empty()) out.emplace_back(difficulty == "easy" ? "accuracy_easy" : "accuracy_hard", acc);
    if (!length.empty())
      out.emplace_back(length == "short" ? "accuracy_short" : length == "medium" ? "accuracy_medium" : "accuracy_long", acc);
    return out;
  }
};

std::string_view trim_ascii(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

class MmluMetric : public MetricPlugin {
 public:
  explicit MmluMetric(const Params&) {}
  std::string_view name() const override { return "mmlu"; }
  std::vector<std::string> score_keys() const override { return {"acc"}; }
  Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                const nlohmann::json&) const override {
    if (references.empty()) fail("metric 'mmlu': a case needs the gold letter as its reference");
    double acc = 0;
    for (const auto& gold : references) acc = std::max(acc, trim_ascii(prediction) == trim_ascii(gold) ? 1.0 : 0.0);
    return {{"acc", acc}};
  }
};

}  // namespace

void register_choice_accuracy(Catalog& catalog) {
  add_metric<LongBenchV2Metric>(catalog, "longbench_v2",
                                "LongBench v2 accuracy: official answer extraction, easy/hard and length groups");
  add_metric<MmluMetric>(catalog, "mmlu", "MMLU acc: the chosen letter against the gold letter");
}

}  // namespace ctx
