// Hand cases for the metrics and their text helpers: empty inputs, Unicode, the HotpotQA yes/no
// rule, stemming of short tokens, rougeLsum's newline splitting, and malformed case lines.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "eval/metric_cases.h"
#include "eval/metrics/longbench.h"
#include "eval/metrics/rouge.h"
#include "eval/text/answer_normalize.h"
#include "eval/text/porter_stemmer.h"
#include "eval/text/rouge_tokenizer.h"
#include "eval/text/unicode.h"
#include "plugins/register_all.h"
#include "tests/support/error_of.h"

namespace ctx {
namespace {

Scores score(const std::string& metric, const std::string& pred, const std::vector<std::string>& refs,
             const nlohmann::json& options = nullptr) {
  return builtin_catalog().metric.create(metric)->scores(pred, refs, options);
}

TEST(MetricsUnit, PythonLowerAndSplit) {
  EXPECT_EQ(text::u32_to_utf8(text::py_lower(text::utf8_to_u32("İstanbul ΟΔΥΣΣΕΥΣ"))), "i̇stanbul οδυσσευς");
  EXPECT_EQ(text::py_split(U"a\u2028b\u0085c\u3000d\u200be\x1f f").size(), 5u);  // U+200B is not whitespace
}

TEST(MetricsUnit, PorterStemmerNltkExtensions) {
  EXPECT_EQ(text::porter_stem_utf8("skies"), "sky");
  EXPECT_EQ(text::porter_stem_utf8("dying"), "die");
  EXPECT_EQ(text::porter_stem_utf8("does"), "doe");
  EXPECT_EQ(text::porter_stem_utf8("generously"), "gener");
  EXPECT_EQ(text::porter_stem_utf8("happy"), "happi");
  EXPECT_EQ(text::porter_stem_utf8("is"), "is");
}

TEST(MetricsUnit, RougeTokenizerStemsOnlyLongTokens) {
  EXPECT_EQ(text::rouge_tokenize("was does naïve 3.5%", true), (std::vector<std::string>{"was", "doe", "na", "ve", "3", "5"}));
  EXPECT_EQ(text::rouge_tokenize("Straße ﬁnal", false), (std::vector<std::string>{"stra", "e", "nal"}));
}

TEST(MetricsUnit, RougeEmptyInputsScoreZero) {
  for (const auto& s : score("rouge", "", {"the cat"})) EXPECT_EQ(s.second, 0.0) << s.first;
  for (const auto& s : score("rouge", "the cat", {"   "})) EXPECT_EQ(s.second, 0.0) << s.first;
}

TEST(MetricsUnit, RougeLsumSplitsOnNewlines) {
  // One sentence each way: Lsum equals L; split into lines the union LCS recovers both halves.
  const auto one = rouge_scores("a b c d", "c d a b", {"rougeL", "rougeLsum"}, false);
  EXPECT_DOUBLE_EQ(one[0].fmeasure, 0.5);
  EXPECT_DOUBLE_EQ(one[1].fmeasure, 0.5);
  const auto lines = rouge_scores("a b\nc d", "c d\na b", {"rougeLsum"}, false);
  EXPECT_DOUBLE_EQ(lines[0].fmeasure, 1.0);
}

TEST(MetricsUnit, HotpotYesNoRule) {
  const auto s = score("hotpot_em_f1", "yes, they are", {"yes"});
  EXPECT_EQ(score_of(s, "em"), 0.0);
  EXPECT_EQ(score_of(s, "f1"), 0.0);
  const auto t = score("hotpot_em_f1", "the", {"a"});  // both normalise to "": EM 1, F1 0
  EXPECT_EQ(score_of(t, "em"), 1.0);
  EXPECT_EQ(score_of(t, "f1"), 0.0);
  EXPECT_EQ(score_of(score("squad_em_f1", "yes, they are", {"yes"}), "f1"), 0.5);  // no rule in SQuAD
}

TEST(MetricsUnit, SquadUnicodeArticlesAndMaxOverReferences) {
  EXPECT_EQ(text::normalize_answer_tokens("Théa the «Cat»"), (std::vector<std::u32string>{U"théa", U"«cat»"}));
  const auto s = score("squad_em_f1", "Paris", {"London", "paris!"});
  EXPECT_EQ(score_of(s, "exact_match"), 1.0);
  EXPECT_EQ(score_of(s, "exact_match@ref0"), 0.0);
}

TEST(MetricsUnit, EmptyPredictionAndEmptyReferences) {
  EXPECT_EQ(score_of(score("squad_em_f1", "", {"x"}), "f1"), 0.0);
  EXPECT_EQ(score_of(score("meteor", "", {"a b"}), "meteor"), 0.0);
  EXPECT_EQ(score_of(score("longbench", "", {"x"}, {{"metric", "rouge_score"}}), "score"), 0.0);
  EXPECT_EQ(score_of(score("longbench", "x", {}, {{"metric", "qa_f1_score"}}), "score"), 0.0);
  EXPECT_NE(test::error_of([] { score("rouge", "x", {}); }).find("at least one reference"), std::string::npos);
  EXPECT_NE(test::error_of([] { score("meteor", "x", {}); }).find("at least one reference"), std::string::npos);
}

TEST(MetricsUnit, MeteorExactCopyAndSynonyms) {
  EXPECT_DOUBLE_EQ(score_of(score("meteor", "a b", {"a b"}), "meteor"), 1 - 0.5 * 0.125);
  const auto s = score("meteor", "start", {"begin"});
  EXPECT_EQ(score_of(s, "synonym_matches"), 1.0);
  EXPECT_EQ(score_of(score("meteor", "car", {"automobile"}), "matches"), 0.0);  // stems, not lemmas
}

TEST(MetricsUnit, LongBenchQuirks) {
  EXPECT_EQ(longbench_classification("III only", "III only", {"I only", "II only", "III only"}), 0.5);
  EXPECT_EQ(longbench_count("１２ 12 7", "12"), 1.0 / 3);
  EXPECT_EQ(longbench_code_sim("abcdefgh", "axxxxxxx", false), 0.12);
  EXPECT_EQ(longbench_code_sim("# c\nx = 1", "x = 1", false), 1.0);
  EXPECT_EQ(longbench_task_score({1.0, 0.0, 0.0}), 33.33);
}

TEST(MetricsUnit, BadOptionsAndCaseLines) {
  EXPECT_NE(test::error_of([] { score("rouge", "x", {"x"}, {{"use_stemmer", "yes"}}); }).find("use_stemmer"),
            std::string::npos);
  auto err = [](const std::string& line) { return test::error_of([&] { parse_metric_case(line, "f.jsonl:3"); }); };
  EXPECT_NE(err("{not json").find("f.jsonl:3: not valid JSON"), std::string::npos);
  EXPECT_NE(err(R"({"id": "a", "prediction": "p"})").find("f.jsonl:3: missing \"references\""), std::string::npos);
  EXPECT_NE(err(R"({"id": "a", "prediction": 1, "references": []})").find("\"prediction\" must be a string"),
            std::string::npos);
  EXPECT_NE(err(R"({"id": "a", "prediction": "p", "references": [1]})").find("list of strings"), std::string::npos);
  EXPECT_NE(err("[1]").find("expected a JSON object"), std::string::npos);
}

}  // namespace
}  // namespace ctx
