// Loaders on the real files in ../shared/datasets: record counts, field values of known rows, exact
// prompt text against the official templates filled by hand.
#include <gtest/gtest.h>

#include <map>

#include "tests/datasets/dataset_test_util.h"

namespace ctx {
namespace {

using test::load_dataset;

std::map<std::string, size_t> count_meta(const LoadedDataset& d, const std::string& key) {
  std::map<std::string, size_t> out;
  for (const auto& s : d.samples) ++out[s.meta.at(key)];
  return out;
}

TEST(MmluReal, RecordCountsPerSplit) {
  const auto test = load_dataset("mmlu:split=test,shots=0");
  EXPECT_EQ(test.samples.size(), 14042u);
  EXPECT_EQ(count_meta(test, "subject").size(), 57u);
  EXPECT_EQ(count_meta(test, "subject").at("abstract_algebra"), 100u);
  EXPECT_EQ(load_dataset("mmlu:split=val,shots=0").samples.size(), 1531u);
  const auto dev = load_dataset("mmlu:split=dev,shots=0");
  EXPECT_EQ(dev.samples.size(), 285u);
  EXPECT_TRUE(dev.skipped.empty());
}

TEST(MmluReal, KnownRowAndChoices) {
  const auto d = load_dataset("mmlu:subjects=[virology],shots=0");
  ASSERT_EQ(d.samples.size(), 166u);
  const Sample& s = d.samples[10];
  EXPECT_EQ(s.question,
            "There were no new cases of Ebola virus in the United States from January 1, 1997 through January 1, 1998. "
            "Which of the following epidemiologic terms does this statement describe?");
  EXPECT_EQ(s.choices, (std::vector<std::string>{"Incidence", "Lifetime expectancy", "Lifetime prevalence", "Period prevalence"}));
  EXPECT_EQ(s.references, std::vector<std::string>{"C"});
  EXPECT_EQ(s.gold_index, 2);
  EXPECT_EQ(s.continuations, (std::vector<std::string>{" A", " B", " C", " D"}));
  EXPECT_EQ(s.scoring, "loglikelihood");
  EXPECT_EQ(s.id, "virology/test/10");
}

TEST(MmluReal, QuoteInsideUnquotedFieldIsLiteralAsPythonCsvReadsIt) {
  // college_medicine_val.csv line 6 has a field ending in '?"' without opening quote.
  const auto d = load_dataset("mmlu:subjects=[college_medicine],split=val,shots=0");
  ASSERT_EQ(d.samples.size(), 22u);
  EXPECT_EQ(d.samples[5].question,
            "Which of the following would be the most accurate definition of Nietzsche\u2019s Will to Truth?\"");
}

TEST(MmluReal, FiveShotPromptIsTheLmEvalFormat) {
  const auto d = load_dataset("mmlu:subjects=[anatomy],shots=2,limit=1");
  ASSERT_EQ(d.samples.size(), 1u);
  const std::string expected =
      "The following are multiple choice questions (with answers) about anatomy.\n\n"
      "What is the embryological origin of the hyoid bone?\n"
      "A. The first pharyngeal arch\nB. The first and second pharyngeal arches\nC. The second pharyngeal arch\n"
      "D. The second and third pharyngeal arches\nAnswer: D\n\n"
      "Which of these branches of the trigeminal nerve contain somatic motor processes?\n"
      "A. The supraorbital nerve\nB. The infraorbital nerve\nC. The mental nerve\nD. None of the above\nAnswer: D\n\n"
      "A lesion causing compression of the facial nerve at the stylomastoid foramen will cause ipsilateral\n"
      "A. paralysis of the facial muscles.\nB. paralysis of the facial muscles and loss of taste.\n"
      "C. paralysis of the facial muscles, loss of taste and lacrimation.\n"
      "D. paralysis of the facial muscles, loss of taste, lacrimation and decreased salivation.\nAnswer:";
  EXPECT_EQ(d.samples[0].prompt, expected);
  EXPECT_EQ(d.samples[0].references, std::vector<std::string>{"A"});
}

TEST(MmluReal, SubjectHeaderReplacesUnderscoresAndGenerateModeExtracts) {
  const auto d = load_dataset("mmlu:subjects=[high_school_us_history],shots=0,limit=1,mode=generate");
  ASSERT_EQ(d.samples.size(), 1u);
  EXPECT_TRUE(d.samples[0].prompt.starts_with(
      "The following are multiple choice questions (with answers) about high school us history.\n\n"));
  EXPECT_EQ(d.samples[0].scoring, "generate");
  EXPECT_EQ(d.samples[0].extraction, "mmlu_letter");
  EXPECT_EQ(d.samples[0].max_new_tokens, 32);
  EXPECT_TRUE(d.samples[0].continuations.empty());
}

TEST(MmluReal, UnknownSubjectNamesTheFile) {
  const std::string msg = test::error_of([] { load_dataset("mmlu:subjects=[astrology],shots=0"); });
  EXPECT_NE(msg.find("astrology_test.csv"), std::string::npos) << msg;
}

TEST(HotpotQaReal, SimplifiedClosedBookCounts) {
  const auto d = load_dataset("hotpotqa:setting=closed_book");
  ASSERT_EQ(d.samples.size(), 7405u);
  const auto types = count_meta(d, "type");
  EXPECT_EQ(types.at("bridge"), 5918u);
  EXPECT_EQ(types.at("comparison"), 1487u);
  EXPECT_EQ(d.samples[0].question, "Were Scott Derrickson and Ed Wood of the same nationality?");
  EXPECT_EQ(d.samples[7404].references, std::vector<std::string>{"Norwood, Massachusetts"});
  EXPECT_EQ(d.samples[7404].id, "hotpot_dev_7404");
  EXPECT_EQ(d.samples[0].prompt,
            "Answer the question. Only give me the answer and do not output any other words.\n\n"
            "Question: Were Scott Derrickson and Ed Wood of the same nationality?\nAnswer:");
  EXPECT_EQ(d.samples[0].metric, "hotpot_em_f1");
}

TEST(HotpotQaReal, OfficialDistractorRecords) {
  const auto d = load_dataset("hotpotqa");
  ASSERT_EQ(d.samples.size(), 53u);
  const Sample& first = d.samples[0];
  EXPECT_EQ(first.id, "5a8b57f25542995d1e6f1371");
  EXPECT_EQ(first.meta.at("supporting_facts"), "Scott Derrickson#0; Ed Wood#0");
  EXPECT_EQ(first.meta.at("level"), "hard");
  EXPECT_TRUE(first.context.starts_with("Passage 1:\nEd Wood (film)\nEd Wood is a 1994 American biographical"));
  EXPECT_NE(first.context.find("\nPassage 5:\nEd Wood\nEdward Davis Wood Jr. (October 10, 1924 \u2013 December 10, "
                               "1978) was an American filmmaker, actor, writer, producer, and director.\nPassage 6:"),
            std::string::npos);
  EXPECT_EQ(first.prompt,
            "Answer the question based on the given passages. Only give me the answer and do not output any other "
            "words.\n\nThe following are given passages.\n" +
                first.context +
                "\n\nAnswer the question based on the given passages. Only give me the answer and do not output any "
                "other words.\n\nQuestion: Were Scott Derrickson and Ed Wood of the same nationality?\nAnswer:");
  const Sample& last = d.samples[52];
  EXPECT_EQ(last.id, "5a77724455429972597f153e");
  EXPECT_EQ(last.references, std::vector<std::string>{"Indianapolis Motor Speedway"});
  EXPECT_EQ(last.meta.at("type"), "bridge");
  EXPECT_NE(last.context.find("Passage 10:\n"), std::string::npos);
  EXPECT_EQ(last.context.find("Passage 11:\n"), std::string::npos);
}

TEST(HotpotQaReal, DistractorOnSimplifiedFileNamesFileAndLine) {
  const std::string file = test::shared_path("datasets/hotpotqa/hotpot_dev_v1_simplified.json");
  const std::string msg = test::error_of([&] { load_dataset("hotpotqa:path=" + file); });
  EXPECT_NE(msg.find(file + ":1 (record 0): missing field \"context\""), std::string::npos) << msg;
}

TEST(LongBenchReal, MultiNewsRecordsAndPrompt) {
  const auto d = load_dataset("longbench:task=multi_news");
  ASSERT_EQ(d.samples.size(), 200u);
  const Sample& s = d.samples[0];
  EXPECT_EQ(s.id, "e45abfcb82a3c862c0f772e6f461866839955c11ea2f46a8");
  EXPECT_EQ(s.meta.at("length"), "2099");
  EXPECT_EQ(s.meta.at("chat"), "true");
  EXPECT_EQ(s.max_new_tokens, 512);
  EXPECT_EQ(s.metric, "longbench:metric=rouge_score");
  EXPECT_TRUE(s.context.starts_with("Passage 1:\nMembers of Occupy Philadelphia remain on site at City Hall"));
  // dataset2prompt.json's multi_news template filled by hand.
  EXPECT_EQ(s.prompt, "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n" + s.context +
                          "\n\nNow, write a one-page summary of all the news.\n\nSummary:");
  EXPECT_TRUE(s.references[0].starts_with("The Occupy LA encampment got a stay of execution this morning"))
      << s.references[0].substr(0, 80);
  EXPECT_EQ(d.samples[199].id, "6dd06d4eee78cfbf3ce2fe6413c681ad6937079daf8a7169");
  EXPECT_EQ(d.samples[199].meta.at("length"), "310");
}

TEST(LongBenchReal, UnknownTaskListsTasks) {
  const std::string msg = test::error_of([] { load_dataset("longbench:task=no_such_task"); });
  EXPECT_NE(msg.find("no task 'no_such_task'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("multi_news"), std::string::npos) << msg;
}

TEST(LongBenchV2Real, ShortContextsFromGzip) {
  const auto d = load_dataset("longbench_v2");
  ASSERT_EQ(d.samples.size(), 180u);
  const auto diff = count_meta(d, "difficulty");
  EXPECT_EQ(diff.at("easy"), 59u);
  EXPECT_EQ(diff.at("hard"), 121u);
  const Sample& s = d.samples[0];
  EXPECT_EQ(s.id, "66f36490821e116aacb2cc22");
  EXPECT_EQ(s.meta.at("sub_domain"), "Financial");
  EXPECT_EQ(s.references, std::vector<std::string>{"D"});
  EXPECT_EQ(s.max_new_tokens, 128);
  EXPECT_TRUE(s.context.starts_with("Contents\nPreface."));
  // v2_prompts/0shot.txt filled by hand.
  const std::string expected = "Please read the following text and answer the question below.\n\n<text>\n" + s.context +
                               "\n</text>\n\nWhat is the correct answer to this question: " + s.question +
                               "\nChoices:\n(A) " + s.choices[0] + "\n(B) " + s.choices[1] + "\n(C) " + s.choices[2] +
                               "\n(D) " + s.choices[3] +
                               "\n\nFormat your response as follows: \"The correct answer is (insert answer here)\".";
  EXPECT_EQ(s.prompt, expected);
}

TEST(LongBenchV2Real, QuestionsOnlyNeedsTheNoContextTemplate) {
  const std::string file = test::shared_path("datasets/longbench/v2/longbench_v2_questions_only.jsonl");
  const auto d = load_dataset("longbench_v2:template=0shot_no_context,path=" + file);
  ASSERT_EQ(d.samples.size(), 503u);
  const auto len = count_meta(d, "length");
  EXPECT_EQ(len.at("short"), 180u);
  EXPECT_EQ(len.at("medium"), 215u);
  EXPECT_EQ(len.at("long"), 108u);
  EXPECT_EQ(d.samples[502].id, "66f2a7a9821e116aacb2a721");
  EXPECT_TRUE(d.samples[0].prompt.starts_with("What is the correct answer to this question: "));
  const std::string msg = test::error_of([&] { load_dataset("longbench_v2:path=" + file); });
  EXPECT_NE(msg.find(file + ":1: no \"context\""), std::string::npos) << msg;
}

TEST(Registry, EveryDatasetIsListedWithCommonParameters) {
  const auto& reg = builtin_catalog().dataset;
  EXPECT_EQ(reg.names(), (std::vector<std::string>{"mmlu", "hotpotqa", "narrativeqa", "longbench", "longbench_v2", "needle"}));
  for (const auto& n : reg.names())
    for (const char* p : {"root", "path", "limit", "skip_bad", "max_tokens"}) {
      const auto& schema = reg.get(n).schema;
      EXPECT_TRUE(std::any_of(schema.begin(), schema.end(), [&](const ParamSpec& s) { return s.name == p; })) << n << " " << p;
    }
  EXPECT_EQ(reg.resolve("mmlu:subjects=[anatomy,virology]").params.get_string_list("subjects"),
            (std::vector<std::string>{"anatomy", "virology"}));
  const std::string msg = test::error_of([&] { reg.resolve("mmlu:split=train"); });
  EXPECT_NE(msg.find("split"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ctx
