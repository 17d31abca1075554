// Length control with the Llama-2 tokenizer: LongBench middle truncation (token counts and kept
// ends) and needle placement at depth 0/50/100 % in a haystack of a target token length.
#include <gtest/gtest.h>

#include "core/tokenizer/tokenizer.h"
#include "datasets/needle/haystack.h"
#include "datasets/truncation.h"
#include "tests/datasets/dataset_test_util.h"

namespace ctx {
namespace {

const Tokenizer& llama2() {
  static const auto tok = load_tokenizer(test::shared_path("fixtures/tokenizers/llama2/tokenizer.model"));
  return *tok;
}

TEST(MiddleTruncation, KeepsHalvesAndRecordsTheCut) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "word" + std::to_string(i) + " ";
  text += "END";
  const auto ids = llama2().encode(text, true);
  const auto t = data::middle_truncate(text, llama2(), 101);
  EXPECT_EQ(t.record.original_tokens, int64_t(ids.size()));
  EXPECT_EQ(t.record.kept_tokens, 100);  // int(101 / 2) * 2
  EXPECT_EQ(t.record.cut_tokens, int64_t(ids.size()) - 100);
  // First half: BOS + 49 tokens decoded; last half: the last 50 tokens decoded.
  const std::vector<int32_t> head(ids.begin() + 1, ids.begin() + 50), tail(ids.end() - 50, ids.end());
  EXPECT_EQ(t.text, llama2().decode(head) + llama2().decode(tail));
  EXPECT_TRUE(t.text.starts_with("word0 word1 "));
  EXPECT_TRUE(t.text.ends_with(" END"));
  EXPECT_NEAR(double(llama2().encode(t.text, true).size()), 100.0, 3.0);

  const auto same = data::middle_truncate("short text", llama2(), 100);
  EXPECT_EQ(same.text, "short text");
  EXPECT_EQ(same.record.cut_tokens, 0);
  EXPECT_EQ(same.record.kept_tokens, same.record.original_tokens);
}

TEST(MiddleTruncation, AppliedToRealLongBenchPrompts) {
  const auto full = test::load_dataset("longbench:task=multi_news,limit=3", &llama2());
  const auto cut = test::load_dataset("longbench:task=multi_news,limit=3,max_tokens=512", &llama2());
  ASSERT_EQ(cut.samples.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const Sample& s = cut.samples[i];
    EXPECT_EQ(s.truncation.original_tokens, int64_t(llama2().encode(full.samples[i].prompt, true).size()));
    EXPECT_EQ(full.samples[i].truncation.cut_tokens, 0);
    ASSERT_GT(s.truncation.original_tokens, 512);
    EXPECT_EQ(s.truncation.kept_tokens, 512);
    EXPECT_EQ(s.truncation.cut_tokens, s.truncation.original_tokens - 512);
    EXPECT_TRUE(s.prompt.starts_with("You are given several news passages. Write a one-page summary of all news."));
    EXPECT_TRUE(s.prompt.ends_with("Now, write a one-page summary of all the news.\n\nSummary:"));
  }
  EXPECT_NE(test::error_of([] { test::load_dataset("longbench:task=multi_news,max_tokens=512"); }).find("needs a tokenizer"),
            std::string::npos);
}

TEST(Needle, PlacementAtDepths) {
  data::HaystackSpec spec;
  spec.needle = "The secret number is 7481.";
  spec.context_tokens = 2000;
  spec.seed = 3;
  for (double depth : {0.0, 50.0, 100.0}) {
    spec.depth_percent = depth;
    const auto h = data::build_haystack(spec, llama2());
    EXPECT_LE(h.tokens, 2000 + 5) << depth;
    EXPECT_GE(h.tokens, 2000 - 30) << depth;
    const size_t at = h.text.find(spec.needle);
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(h.text.find(spec.needle, at + 1), std::string::npos);
    const double frac = double(h.needle_token_offset) / double(h.tokens);
    if (depth == 0) {
      EXPECT_EQ(at, 0u);
      EXPECT_EQ(h.needle_token_offset, 0);
    } else if (depth == 100) {
      EXPECT_TRUE(h.text.ends_with(spec.needle));
      EXPECT_NEAR(frac, 1.0, 0.02);
    } else {
      EXPECT_NEAR(frac, 0.5, 0.02);
      EXPECT_EQ(h.needle_sentence, (h.sentences - 1 + 1) / 2);
    }
  }
  // Same seed, same text; another seed, another filler.
  spec.depth_percent = 50;
  EXPECT_EQ(data::build_haystack(spec, llama2()).text, data::build_haystack(spec, llama2()).text);
  auto other = spec;
  other.seed = 4;
  EXPECT_NE(data::build_haystack(other, llama2()).text, data::build_haystack(spec, llama2()).text);
  spec.context_tokens = 3;
  EXPECT_NE(test::error_of([&] { data::build_haystack(spec, llama2()); }).find("more than context_tokens=3"),
            std::string::npos);
}

TEST(Needle, DatasetPlugin) {
  const auto d = test::load_dataset("needle:context_tokens=[500,1000],depths=[0,100]", &llama2());
  ASSERT_EQ(d.samples.size(), 4u);
  EXPECT_EQ(d.samples[3].id, "needle/1000/100");
  EXPECT_EQ(d.samples[1].meta.at("depth_percent"), "100");
  EXPECT_EQ(d.samples[0].meta.at("needle_token_offset"), "0");
  const std::string needle = "The best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a sunny day.";
  EXPECT_EQ(d.samples[0].references, std::vector<std::string>{needle});
  EXPECT_TRUE(d.samples[0].prompt.starts_with(needle));
  EXPECT_TRUE(d.samples[1].prompt.ends_with(needle + "\n\nAnswer the question using only the text above.\n"
                                            "Question: What is the best thing to do in San Francisco?\nAnswer:"));
  EXPECT_NE(test::error_of([] { test::load_dataset("needle"); }).find("needs a tokenizer"), std::string::npos);
}

}  // namespace
}  // namespace ctx
