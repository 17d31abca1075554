// Fidelity statistics (eval/fidelity.h) on hand-computed cases, and compare_models
// (eval/model_fidelity.h) on the real stories260K model.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/model/model_loader.h"
#include "core/tokenizer/tokenizer.h"
#include "eval/fidelity.h"
#include "eval/model_fidelity.h"
#include "plugins/register_all.h"
#include "tests/support/attention.h"
#include "tests/support/error_of.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

TEST(Fidelity, KlMatchesHandComputedValue) {
  // p = softmax(0, ln 3) = (1/4, 3/4), q = softmax(0, 0) = (1/2, 1/2).
  const std::vector<float> p{0.0f, float(std::log(3.0))}, q{0.0f, 0.0f};
  const double want = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.75 / 0.5);
  EXPECT_NEAR(kl_divergence(p, q), want, 1e-7);
  // Not symmetric: KL(q || p) = 1/2 ln(2) + 1/2 ln(2/3).
  EXPECT_NEAR(kl_divergence(q, p), 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0), 1e-7);
}

TEST(Fidelity, IdenticalAndShiftedLogitsGiveZero) {
  const std::vector<float> a{1.5f, -2.0f, 0.25f, 3.0f};
  std::vector<float> shifted = a;
  for (float& x : shifted) x += 100.0f;  // softmax is shift-invariant
  EXPECT_EQ(kl_divergence(a, a), 0.0);
  EXPECT_NEAR(kl_divergence(a, shifted), 0.0, 1e-12);

  FidelityAccumulator acc;
  acc.add(a, a, 2);
  acc.add(a, shifted, 0);
  const FidelityStats s = acc.stats();
  EXPECT_EQ(s.positions, 2);
  EXPECT_NEAR(s.kl_max, 0.0, 1e-12);
  EXPECT_EQ(s.top1_agreement, 1.0);
  EXPECT_NEAR(s.ppl_ratio, 1.0, 1e-12);
}

TEST(Fidelity, PerplexityTopOneAndQuantiles) {
  // Reference uniform over 4 tokens: PPL 4 whatever the next token. Test puts 1/2 on token 0 and
  // 1/6 on the others: next tokens 0 and 1 give NLL ln 2 and ln 6, PPL sqrt(12).
  const std::vector<float> uniform(4, 0.0f);
  const std::vector<float> peaked{float(std::log(3.0)), 0.0f, 0.0f, 0.0f};
  FidelityAccumulator acc;
  acc.add(uniform, peaked, 0);
  acc.add(uniform, peaked, 1);
  const FidelityStats s = acc.stats();
  EXPECT_NEAR(s.ppl_ref, 4.0, 1e-12);
  EXPECT_NEAR(s.ppl_test, std::sqrt(12.0), 1e-9);
  EXPECT_NEAR(s.ppl_ratio, std::sqrt(12.0) / 4.0, 1e-9);
  EXPECT_EQ(s.top1_agreement, 1.0);  // uniform's argmax is token 0 (lowest id on ties), as peaked's
  const double kl = 0.25 * std::log(0.25 / 0.5) + 0.75 * std::log(0.25 / (1.0 / 6.0));
  EXPECT_NEAR(s.kl_mean, kl, 1e-7);  // ln 3 is rounded to float in the logits
  EXPECT_NEAR(s.kl_max, kl, 1e-7);

  FidelityAccumulator mixed;  // KL 0 at one position, > 0 at the other; top-1 differs there
  mixed.add(peaked, peaked, 0);
  mixed.add(std::vector<float>{0.0f, 2.0f}, std::vector<float>{2.0f, 0.0f}, 1);
  const FidelityStats m = mixed.stats();
  EXPECT_EQ(m.top1_agreement, 0.5);
  EXPECT_GT(m.kl_max, 0.0);
  EXPECT_NEAR(m.kl_median, m.kl_max / 2.0, 1e-12);  // interpolated between 0 and the max
  EXPECT_NEAR(m.kl_mean, m.kl_max / 2.0, 1e-12);
}

TEST(Fidelity, KlGrowsWithThePerturbation) {
  // Along one direction in logit space KL is convex with its minimum 0 at the reference, so a
  // larger multiple of the same perturbation must move the model further.
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> ref(16, std::vector<float>(64)), noise = ref;
  for (auto* set : {&ref, &noise})
    for (auto& row : *set)
      for (float& x : row) x = normal(rng);
  double last = 0, last_top1 = 1.0;
  for (float scale : {0.05f, 0.2f, 0.8f, 3.2f}) {
    FidelityAccumulator acc;
    for (size_t i = 0; i < ref.size(); ++i) {
      std::vector<float> test = ref[i];
      for (size_t v = 0; v < test.size(); ++v) test[v] += scale * noise[i][v];
      acc.add(ref[i], test, int32_t(i));
    }
    const FidelityStats s = acc.stats();
    EXPECT_GT(s.kl_mean, last) << scale;
    EXPECT_LE(s.top1_agreement, last_top1) << scale;
    last = s.kl_mean, last_top1 = s.top1_agreement;
  }
  EXPECT_LT(last_top1, 1.0);
}

TEST(Fidelity, BadInputsAreNamed) {
  const std::vector<float> a{0.0f, 1.0f}, b{0.0f, 1.0f, 2.0f};
  FidelityAccumulator acc;
  EXPECT_NE(test::error_of([&] { acc.add(a, b, 0); }).find("different lengths (2 vs 3)"), std::string::npos);
  EXPECT_NE(test::error_of([&] { acc.add(a, a, 2); }).find("next token 2 outside the vocabulary [0, 2)"), std::string::npos);
  const std::vector<float> nan{0.0f, std::nanf("")};
  EXPECT_NE(test::error_of([&] { acc.add(nan, a, 0); }).find("non-finite logit"), std::string::npos);
  EXPECT_EQ(acc.stats().positions, 0);
}

TEST(Fidelity, GreedyAgreementCountsTheCommonPrefix) {
  EXPECT_EQ(greedy_agreement(std::vector<int32_t>{1, 2, 3, 4}, std::vector<int32_t>{1, 2, 9, 4}), 2);
  EXPECT_EQ(greedy_agreement(std::vector<int32_t>{1, 2}, std::vector<int32_t>{1, 2, 3}), 2);
  EXPECT_EQ(greedy_agreement(std::vector<int32_t>{}, std::vector<int32_t>{1}), 0);
}

std::vector<int32_t> story_tokens() {
  // A fixed token sequence in stories260K's 512-token vocabulary.
  std::vector<int32_t> t{1};
  for (int i = 0; i < 40; ++i) t.push_back(int32_t((i * 37 + 11) % 500 + 3));
  return t;
}

TEST(ModelFidelity, SameModelAndScheduleIsExact) {
  auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  Transformer ref(*model, test::attention("flash")), same(*model, test::attention("flash"));
  const std::vector<int32_t> tokens = story_tokens();
  const ModelFidelityReport r = compare_models(ref, same, tokens, {.context = 16, .greedy_tokens = 12});
  EXPECT_EQ(r.context, 16);
  EXPECT_EQ(r.stats.positions, int64_t(tokens.size()) - 1);
  EXPECT_EQ(r.stats.kl_max, 0.0);
  EXPECT_EQ(r.stats.top1_agreement, 1.0);
  EXPECT_EQ(r.stats.ppl_ratio, 1.0);
  EXPECT_EQ(r.greedy_ref.size(), 12u);
  EXPECT_EQ(r.greedy_agreement, 12);
  EXPECT_EQ(r.test_kv_used, r.ref_kv_used);
  EXPECT_GT(r.ref_kv_used, 0);
}

TEST(ModelFidelity, AnotherBackendMovesTheModelOnlyByRounding) {
  auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  Transformer ref(*model, test::attention("eager")), paged(*model, test::attention("paged"));
  const ModelFidelityReport r = compare_models(ref, paged, story_tokens(), {.context = 8, .greedy_tokens = 8});
  EXPECT_LT(r.stats.kl_max, 1e-9);
  EXPECT_GT(r.stats.ppl_ref, 1.0);
  EXPECT_NEAR(r.stats.ppl_ratio, 1.0, 1e-6);
  EXPECT_EQ(r.stats.top1_agreement, 1.0);
  EXPECT_EQ(r.greedy_agreement, 8);
}

TEST(ModelFidelity, KvCompressionMovesTheModelMonotonicallyWithTheBudget) {
  // Controlled case: the real stories260K on a sentence of its own training distribution, prefill
  // 14 tokens, then decode; l2norm compression in every layer at decreasing keep ratios. Keeping
  // everything must be exact; keeping less must move the model further (KL) and hold fewer KV bytes.
  auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  const auto tok = load_tokenizer(model->tokenizer_path, int32_t(model->config.vocab_size));
  const std::vector<int32_t> tokens =
      tok->encode("Once upon a time, there was a little girl named Lily. She loved to play outside.", true);
  ASSERT_GE(tokens.size(), 20u);
  Transformer ref(*model, test::attention("flash"));
  double last_kl = -1;
  int64_t last_bytes = std::numeric_limits<int64_t>::max();
  for (const char* keep : {"1.0", "0.75", "0.5", "0.25"}) {
    Transformer test(*model, test::attention("flash"));
    test.set_kv_compressor(builtin_catalog().kv.create(std::string("l2norm:skip_layers=[],keep_ratio=") + keep));
    const ModelFidelityReport r = compare_models(ref, test, tokens, {.context = 14, .greedy_tokens = 8});
    if (std::string(keep) == "1.0") {
      EXPECT_EQ(r.stats.kl_max, 0.0);
      EXPECT_EQ(r.greedy_agreement, 8);
      EXPECT_EQ(r.test_kv_used, r.ref_kv_used);
    } else {
      EXPECT_GT(r.stats.kl_mean, last_kl) << keep;
      EXPECT_LT(r.test_kv_used, last_bytes) << keep;
    }
    last_kl = r.stats.kl_mean;
    last_bytes = r.test_kv_used;
  }
  EXPECT_GT(last_kl, 0.01);  // keeping a quarter is far from exact
}

TEST(ModelFidelity, RejectsBadSchedules) {
  auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  Transformer a(*model, test::attention("flash")), b(*model, test::attention("flash"));
  const std::vector<int32_t> tokens = story_tokens();
  EXPECT_NE(test::error_of([&] { compare_models(a, b, std::span(tokens).subspan(0, 1), {}); }).find("at least 2 tokens"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { compare_models(a, b, tokens, {.context = 41}); }).find("context 41 outside [1, 40]"),
            std::string::npos);
}

}  // namespace
}  // namespace ctx
