// Hand cases for the metrics and their text helpers: empty inputs, Unicode, the HotpotQA yes/no
// rule, stemming of short tokens, rougeLsum's newline splitting, and malformed case lines.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <cmath>
#include <random>

#include "core/base/error.h"
#include "eval/metric_cases.h"
#include "eval/metrics/bleu.h"
#include "eval/metrics/choice_accuracy.h"
#include "eval/metrics/lcs.h"
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
  EXPECT_EQ(text::normalize_answer_tokens("Théa the «Cat»"), (std::vector<std::string>{"théa", "«cat»"}));
  EXPECT_EQ(text::normalize_answer_tokens("The\x01the\x01 A-n THE_cat"), (std::vector<std::string>{"\x01", "\x01", "thecat"}));
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

TEST(MetricsUnit, LongBenchV2ExtractionAndTable) {
  EXPECT_EQ(longbench_v2_extract("**The correct answer is (B)**"), 'B');
  EXPECT_EQ(longbench_v2_extract("The correct answer is C. The correct answer is (D)"), 'D');  // pattern 1 first
  EXPECT_EQ(longbench_v2_extract("The correct answer is A, not B"), 'A');
  EXPECT_EQ(longbench_v2_extract("The correct answer is (E)"), std::nullopt);
  EXPECT_EQ(longbench_v2_extract("the correct answer is (A)"), std::nullopt);  // case-sensitive
  EXPECT_EQ(longbench_v2_extract("The correct answer is"), std::nullopt);
  const auto s = score("longbench_v2", "The correct answer is (A)", {"A"}, {{"difficulty", "hard"}, {"length", "long"}});
  EXPECT_EQ(s, (Scores{{"accuracy", 1.0}, {"answered", 1.0}, {"accuracy_hard", 1.0}, {"accuracy_long", 1.0}}));
  EXPECT_EQ(score_of(score("longbench_v2", "no idea", {"A"}, {{"compensated", true}}), "accuracy"), 0.25);
  EXPECT_EQ(score_of(score("longbench_v2", "no idea", {"A"}), "accuracy"), 0.0);
  // result.py: 3 items, easy 1/1, hard 1 of 2 (0.25 compensated); short 2, other -> long.
  const std::vector<LongBenchV2Item> items = {
      {true, true, "easy", "short"}, {false, false, "hard", "short"}, {true, true, "HARD", "xl"}};
  const auto t = longbench_v2_table(items, true);
  EXPECT_EQ(t.overall, 75.0);
  EXPECT_EQ(t.easy, 100.0);
  EXPECT_EQ(t.hard, 62.5);
  EXPECT_EQ(t.short_, 62.5);
  EXPECT_TRUE(std::isnan(t.medium));
  EXPECT_EQ(t.long_, 100.0);
  EXPECT_EQ(longbench_v2_table(items, false).overall, 66.7);
  EXPECT_EQ(py_round(0.125, 2), 0.12);  // the binary value decides, ties to even
}

TEST(MetricsUnit, MmluLetterAccuracy) {
  EXPECT_EQ(score_of(score("mmlu", " B\n", {"B"}), "acc"), 1.0);
  EXPECT_EQ(score_of(score("mmlu", "b", {"B"}), "acc"), 0.0);
  EXPECT_EQ(score_of(score("mmlu", "C", {"A", "C"}), "acc"), 1.0);
}

TEST(MetricsUnit, SingleMetricPluginsMatchTheCombinedOnes) {
  const std::string pred = "The cat sat on the mat.\nIt was happy.", ref = "A cat sat on a mat.\nThe cat was happy!";
  const auto all = score("rouge", pred, {ref}, {{"use_stemmer", true}});
  for (const std::string type : {"rouge1", "rouge2", "rougeL", "rougeLsum"}) {
    const auto one = score(type, pred, {ref}, {{"use_stemmer", true}});
    ASSERT_EQ(one.size(), 3u) << type;
    EXPECT_EQ(score_of(one, type + "_fmeasure"), score_of(all, type + "_fmeasure")) << type;
  }
  EXPECT_EQ(score_of(score("qa_f1_score", pred, {ref}), "score"),
            score_of(score("longbench", pred, {ref}, {{"metric", "qa_f1_score"}}), "score"));
  EXPECT_EQ(score_of(score("code_sim_score", "x = 1", {"x = 2"}, {{"metric", "qa_f1_score"}}), "score"), 0.8);
  for (const std::string name : {"rouge1", "rougeL", "qa_f1_score", "bleu", "longbench_v2", "mmlu"})
    EXPECT_NE(builtin_catalog().metric.find(name), nullptr) << name;
}

TEST(MetricsUnit, BleuEdgeCases) {
  EXPECT_EQ(sentence_bleu({"a b c d"}, "", 4).bleu, 0.0);
  EXPECT_EQ(sentence_bleu({"a b c d"}, "A B C D", 4).bleu, 1.0);
  // BLEU-4 with no 4-gram match is ~0 (method0: log of the smallest double), BLEU-1 is not.
  EXPECT_LT(sentence_bleu({"a b c d"}, "a b c x", 4).bleu, 1e-70);
  EXPECT_DOUBLE_EQ(sentence_bleu({"a b c d"}, "a b c x", 1).bleu, 0.75);
  EXPECT_EQ(py_fsum({1e100, 1.0, -1e100}), 1.0);
  EXPECT_EQ(py_fsum({0.1, 0.2, 0.3}), 0.6);
  EXPECT_THROW(sentence_bleu({}, "a", 4), Error);
}

TEST(MetricsUnit, BitParallelLcsTableMatchesClassicTable) {
  // Every cell, and rouge-score's backtrack, on random sequences over small alphabets, across the
  // 64-column word boundary.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t alphabet = 2 + rng() % 6, n = rng() % 90, m = 1 + rng() % 140;
    std::vector<uint32_t> a(n), b(m);
    for (auto& x : a) x = uint32_t(rng() % alphabet);
    for (auto& x : b) x = uint32_t(rng() % alphabet);
    LcsTable t(alphabet);
    t.build(a, b);
    std::vector<uint32_t> classic((n + 1) * (m + 1), 0);
    for (size_t i = 1; i <= n; ++i)
      for (size_t j = 1; j <= m; ++j)
        classic[i * (m + 1) + j] = a[i - 1] == b[j - 1] ? classic[(i - 1) * (m + 1) + j - 1] + 1
                                                         : std::max(classic[(i - 1) * (m + 1) + j], classic[i * (m + 1) + j - 1]);
    for (size_t i = 0; i <= n; ++i)
      for (size_t j = 0; j <= m; ++j) ASSERT_EQ(t.at(i, j), classic[i * (m + 1) + j]) << trial << " " << i << " " << j;
    EXPECT_EQ(t.length(), classic.back());
    EXPECT_EQ(lcs_length(a, b, alphabet), classic.back());
    EXPECT_EQ(rouge_backtrack(t, a, b), lcs_indices_table(a, b));
  }
}

}  // namespace
}  // namespace ctx
