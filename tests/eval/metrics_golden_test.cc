// Every case of shared/golden/metrics/*.jsonl (and of tests/eval/data/bleu_golden.jsonl) through the registered metric of the same name, within
// the tolerance its README states. On failure the worst case and the first mismatches are printed.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "eval/metric_cases.h"
#include "plugins/register_all.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

std::string base_key(const std::string& key) { return key.substr(0, key.find('@')); }

// README tolerances: counts, 0/1 outcomes and code_sim_score (integers/100) exact; METEOR score 1e-9;
// LongBench classification/retrieval/count 1e-12; every other value 1e-6.
double tolerance(const std::string& file, const MetricCase& c, const std::string& key) {
  const std::string k = base_key(key);
  if (k == "em" || k == "exact_match") return 0;
  // Our own nltk 3.8 cases: counts and precisions exact; exp/log may differ by an ulp across libms.
  if (file == "bleu") return k == "bleu" || k == "brevity_penalty" ? 1e-12 : 0;
  if (file == "meteor") return k == "meteor" ? 1e-9 : 0;
  if (file == "longbench") {
    const std::string metric = c.options.value("metric", "");
    if (metric == "code_sim_score") return 0;
    if (metric == "qa_f1_score" || metric == "rouge_score") return 1e-6;
    return 1e-12;
  }
  return 1e-6;
}

void check_golden_file(const std::string& file, const std::string& path = "") {
  const auto cases = read_metric_cases(path.empty() ? test::shared_path("golden/metrics/" + file + ".jsonl") : path);
  ASSERT_FALSE(cases.empty());
  const auto metric = builtin_catalog().metric.create(file);
  size_t failed_cases = 0, values = 0;
  double worst = 0;
  std::string worst_text, first_failures;
  for (const auto& c : cases) {
    Scores got;
    try {
      got = metric->scores(c.prediction, c.references, c.options);
    } catch (const std::exception& e) {
      ++failed_cases;
      first_failures += c.id + ": threw " + e.what() + "\n";
      continue;
    }
    bool case_ok = true;
    for (const auto& [key, want] : c.expected) {
      ++values;
      double have = NAN;
      for (const auto& [k, v] : got)
        if (k == key) have = v;
      const double dev = std::isnan(have) ? INFINITY : std::fabs(have - want);
      if (dev > worst || (std::isinf(dev) && worst_text.empty())) {
        worst = dev;
        std::ostringstream os;
        os.precision(17);
        os << c.id << " [" << key << "] expected " << want << " got " << have;
        worst_text = os.str();
      }
      if (!(dev <= tolerance(file, c, key))) {
        case_ok = false;
        if (std::count(first_failures.begin(), first_failures.end(), '\n') < 12) {
          std::ostringstream os;
          os.precision(17);
          os << c.id << " [" << key << "] expected " << want << " got " << have << "\n";
          first_failures += os.str();
        }
      }
    }
    if (!case_ok) ++failed_cases;
  }
  std::printf("%s: %zu/%zu cases match (%zu values), worst deviation %.3g%s%s\n", file.c_str(),
              cases.size() - failed_cases, cases.size(), values, worst, worst_text.empty() ? "" : " at ",
              worst_text.c_str());
  EXPECT_EQ(failed_cases, 0u) << "worst: " << worst_text << "\nfirst mismatches:\n" << first_failures;
}

TEST(MetricsGolden, SquadEmF1) { check_golden_file("squad_em_f1"); }
// tests/eval/data/bleu_golden.jsonl, written by make_bleu_golden.py with nltk 3.8.
TEST(MetricsGolden, BleuNltk) { check_golden_file("bleu", std::string(CTXLAB_TEST_DATA_DIR) + "/bleu_golden.jsonl"); }
TEST(MetricsGolden, HotpotEmF1) { check_golden_file("hotpot_em_f1"); }
TEST(MetricsGolden, Rouge) { check_golden_file("rouge"); }
TEST(MetricsGolden, LongBench) { check_golden_file("longbench"); }
TEST(MetricsGolden, Meteor) { check_golden_file("meteor"); }

}  // namespace
}  // namespace ctx
