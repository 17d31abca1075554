// Every HF fixture (the hybrid Mamba-2 one included) with every attention backend against
// transformers' reference logits and greedy tokens: teacher-forced in one prefill, token by token
// through the KV cache, batched with prompts of different lengths, and greedy generation.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/model/generate.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "tests/support/attention.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

constexpr double kTolerance = 1e-4;  // max |diff| <= 1e-4 * max |logit|, float32
constexpr int kNewTokens = 16;

using Reference = test::HfReference;

Reference load_reference(const std::string& dir) {
  Reference r = test::load_hf_reference(dir);
  EXPECT_EQ(r.generated_len, r.prompt_len + kNewTokens);
  return r;
}

class HfFixture : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    dir_ = test::shared_path("fixtures/hf/" + std::get<0>(GetParam()));
    attention_ = test::attention(std::get<1>(GetParam()));
    model_ = load_model(dir_);
    ref_ = load_reference(dir_);
    ASSERT_EQ(ref_.vocab, model_->config.vocab_size);
  }
  std::vector<int32_t> prompt(int64_t b) const {
    return {ref_.input_ids.begin() + b * ref_.prompt_len, ref_.input_ids.begin() + (b + 1) * ref_.prompt_len};
  }
  const float* ref_logits(int64_t b, int64_t t) const { return ref_.logits.data() + (b * ref_.prompt_len + t) * ref_.vocab; }
  std::vector<int32_t> ref_generated(int64_t b) const {
    const int64_t len = ref_.prompt_len + kNewTokens;
    return {ref_.generated.begin() + b * len + ref_.prompt_len, ref_.generated.begin() + (b + 1) * len};
  }

  std::string dir_;
  std::unique_ptr<Model> model_;
  std::shared_ptr<const AttentionBackend> attention_;
  Reference ref_;
};

TEST_P(HfFixture, TeacherForcedLogitsMatchInOnePrefill) {
  Transformer tf(*model_, attention_);
  std::vector<KvCache> caches;
  for (int64_t b = 0; b < ref_.batch; ++b) caches.push_back(tf.new_cache());
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < ref_.batch; ++b) prompts.push_back(prompt(b));
  std::vector<SequenceStep> steps;
  for (int64_t b = 0; b < ref_.batch; ++b) steps.push_back({&caches[size_t(b)], prompts[size_t(b)], 0});
  const std::vector<float> logits = tf.forward(steps);
  ASSERT_EQ(int64_t(logits.size()), ref_.batch * ref_.prompt_len * ref_.vocab);
  const auto d = test::compare(logits.data(), ref_.logits.data(), int64_t(logits.size()));
  EXPECT_LE(d.relative(), kTolerance) << "max |diff| " << d.max_abs_diff << " vs max |logit| " << d.max_abs_ref;
}

TEST_P(HfFixture, TokenByTokenThroughKvCacheMatches) {
  Transformer tf(*model_, attention_);
  for (int64_t b = 0; b < ref_.batch; ++b) {
    KvCache cache = tf.new_cache();
    const auto p = prompt(b);
    for (int64_t t = 0; t < ref_.prompt_len; ++t) {
      SequenceStep step{&cache, std::span<const int32_t>(&p[size_t(t)], 1), -1};
      const auto logits = tf.forward({&step, 1});
      const auto d = test::compare(logits.data(), ref_logits(b, t), ref_.vocab);
      ASSERT_LE(d.relative(), kTolerance) << "prompt " << b << " position " << t;
    }
    EXPECT_EQ(cache.position(), ref_.prompt_len);
  }
}

TEST_P(HfFixture, RaggedBatchEqualsSeparateRuns) {
  // Prompt 0 whole, prompt 1 cut short, and prompt 1's remainder fed after a partial prefill:
  // every row must match the reference for its own position.
  Transformer tf(*model_, attention_);
  const int64_t cut = ref_.prompt_len - 5;
  const auto p0 = prompt(0), p1 = prompt(1);
  KvCache c0 = tf.new_cache(), c1 = tf.new_cache();
  std::vector<SequenceStep> steps = {{&c0, p0, 0}, {&c1, std::span<const int32_t>(p1.data(), size_t(cut)), 0}};
  auto logits = tf.forward(steps);
  ASSERT_EQ(int64_t(logits.size()), (ref_.prompt_len + cut) * ref_.vocab);
  EXPECT_LE(test::compare(logits.data(), ref_logits(0, 0), ref_.prompt_len * ref_.vocab).relative(), kTolerance);
  EXPECT_LE(test::compare(logits.data() + ref_.prompt_len * ref_.vocab, ref_logits(1, 0), cut * ref_.vocab).relative(),
            kTolerance);
  SequenceStep rest{&c1, std::span<const int32_t>(p1.data() + cut, size_t(ref_.prompt_len - cut)), 0};
  logits = tf.forward({&rest, 1});
  EXPECT_LE(test::compare(logits.data(), ref_logits(1, cut), (ref_.prompt_len - cut) * ref_.vocab).relative(), kTolerance);
}

TEST_P(HfFixture, GreedyTokensMatchTeacherForced) {
  // One prefill over prompt + reference continuation: each argmax must be the next reference token.
  Transformer tf(*model_, attention_);
  for (int64_t b = 0; b < ref_.batch; ++b) {
    std::vector<int32_t> seq = prompt(b);
    const auto gen = ref_generated(b);
    seq.insert(seq.end(), gen.begin(), gen.end() - 1);
    KvCache cache = tf.new_cache();
    SequenceStep step{&cache, seq, ref_.prompt_len - 1};
    const auto logits = tf.forward({&step, 1});
    for (int i = 0; i < kNewTokens; ++i)
      EXPECT_EQ(argmax(logits.data() + i * ref_.vocab, ref_.vocab), gen[size_t(i)]) << "prompt " << b << " token " << i;
  }
}

TEST_P(HfFixture, GreedyGenerationThroughKvCacheMatches) {
  Transformer tf(*model_, attention_);
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < ref_.batch; ++b) prompts.push_back(prompt(b));
  GenerateOptions opt;
  opt.max_new_tokens = kNewTokens;  // the reference does not stop on EOS
  const auto results = generate_greedy(tf, prompts, opt);
  for (int64_t b = 0; b < ref_.batch; ++b) EXPECT_EQ(results[size_t(b)].tokens, ref_generated(b)) << "prompt " << b;
}

std::vector<std::string> fixture_names() {
  return {"llama", "llama_bf16", "llama_tied", "llama_mha", "mistral_swa", "qwen2", "qwen3", "granite", "granite_hybrid"};
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, HfFixture,
                         ::testing::Combine(::testing::ValuesIn(fixture_names()), ::testing::ValuesIn(test::attention_names())),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(HfFixtures, EveryFolderIsCovered) {
  // Guards against a new fixture folder that this suite silently skips.
  std::vector<std::string> covered = fixture_names();
  covered.push_back("stories260k_hf");  // its own test (reference holds generation only)
  for (const auto& e : std::filesystem::directory_iterator(test::shared_path("fixtures/hf")))
    if (e.is_directory()) {
      EXPECT_NE(std::find(covered.begin(), covered.end(), e.path().filename().string()), covered.end())
          << e.path() << " is not tested";
    }
}

}  // namespace
}  // namespace ctx
