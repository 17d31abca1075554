// The real trained stories260K model against llama2.c run.c: logits of four teacher-forced
// sequences, all 30 greedy generations (stopping on BOS as run.c does), and the HF conversion of
// the same model giving the same tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base/mapped_file.h"
#include "core/model/generate.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "tests/support/attention.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

using json = nlohmann::json;

std::string dir() { return test::shared_path("fixtures/stories260k"); }

json read_json(const std::string& path) { return json::parse(read_file(path)); }

TEST(Stories260k, LoadsLegacyHeaderWithSharedClassifier) {
  auto m = load_model(dir() + "/stories260K.bin");
  const ModelConfig& c = m->config;
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(m->weights.lm_head.data, m->weights.embed.data);
  EXPECT_EQ(c.rope.layout, RopeLayout::kInterleaved);
  EXPECT_EQ(m->tokenizer_path, dir() + "/tok512.bin");
  EXPECT_EQ(m->stop_ids, std::vector<int32_t>{1});
}

// Run with every attention backend.
class Stories260kBackend : public ::testing::TestWithParam<std::string> {};

TEST_P(Stories260kBackend, TeacherForcedLogitsMatchRunC) {
  auto m = load_model(dir() + "/stories260K.bin");
  Transformer tf(*m, test::attention(GetParam()));
  const json manifest = read_json(dir() + "/logits.json");
  for (const auto& seq : manifest["sequences"]) {
    const auto ids = seq["input_ids"].get<std::vector<int32_t>>();
    MappedFile ref = MappedFile::open(dir() + "/" + seq["file"].get<std::string>());
    ASSERT_EQ(ref.size(), ids.size() * 512 * 4);
    const float* golden = reinterpret_cast<const float*>(ref.data());
    // One prefill.
    KvCache cache = tf.new_cache();
    SequenceStep step{&cache, ids, 0};
    auto logits = tf.forward({&step, 1});
    ASSERT_EQ(logits.size(), ids.size() * 512);
    for (size_t i = 0; i < logits.size(); ++i)
      ASSERT_NEAR(logits[i], golden[i], 1e-4 + 1e-4 * std::fabs(golden[i])) << seq["name"] << " element " << i;
    // Token by token, as run.c's forward(token, pos) does.
    KvCache c2 = tf.new_cache();
    for (size_t t = 0; t < ids.size(); ++t) {
      SequenceStep s{&c2, std::span<const int32_t>(&ids[t], 1), -1};
      auto row = tf.forward({&s, 1});
      for (int64_t i = 0; i < 512; ++i)
        ASSERT_NEAR(row[size_t(i)], golden[t * 512 + size_t(i)], 1e-4 + 1e-4 * std::fabs(golden[t * 512 + size_t(i)]))
            << seq["name"] << " position " << t;
    }
  }
}

TEST_P(Stories260kBackend, GreedyGenerationsMatchRunC) {
  auto m = load_model(dir() + "/stories260K.bin");
  Transformer tf(*m, test::attention(GetParam()));
  const json gens = read_json(dir() + "/generations.json");
  int runs = 0;
  for (const auto& g : gens["generations"]) {
    const auto prompt = g["prompt_ids"].get<std::vector<int32_t>>();
    for (const auto& run : g["runs"]) {
      const int64_t steps = run["steps"].get<int64_t>();
      GenerateOptions opt;
      opt.max_new_tokens = steps - int64_t(prompt.size()) + 1;  // run.c's -n counts prompt positions
      opt.stop_ids = m->stop_ids;
      const auto result = generate_greedy(tf, {prompt}, opt);
      EXPECT_EQ(result[0].tokens, run["generated_ids"].get<std::vector<int32_t>>())
          << "prompt '" << g["prompt"].get<std::string>() << "' steps " << steps;
      EXPECT_EQ(result[0].stopped, run["stopped_on_bos"].get<bool>());
      ++runs;
    }
  }
  EXPECT_EQ(runs, 30);
}

// run.c's 15 prompts (lengths 1..14) and its 256-step generation of each.
struct RunCGenerations {
  std::vector<std::vector<int32_t>> prompts, expected;
};
RunCGenerations run_c_generations() {
  const json gens = read_json(dir() + "/generations.json");
  RunCGenerations r;
  for (const auto& g : gens["generations"]) {
    r.prompts.push_back(g["prompt_ids"].get<std::vector<int32_t>>());
    for (const auto& run : g["runs"])
      if (run["steps"] == 256) r.expected.push_back(run["generated_ids"].get<std::vector<int32_t>>());
  }
  EXPECT_EQ(r.prompts.size(), r.expected.size());
  return r;
}

// All prompts in one ragged batch (prompts fed in forwards of prefill_chunk tokens; 0: one) give
// run.c's first 40 tokens of each.
void expect_batch_matches_run_c(Transformer& tf, const Model& m, const RunCGenerations& r, int64_t prefill_chunk) {
  GenerateOptions opt;
  opt.max_new_tokens = 40;
  opt.stop_ids = m.stop_ids;
  opt.prefill_chunk = prefill_chunk;
  const auto results = generate_greedy(tf, r.prompts, opt);
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    const size_t n = std::min<size_t>(40, r.expected[i].size());
    EXPECT_EQ(results[i].tokens, std::vector<int32_t>(r.expected[i].begin(), r.expected[i].begin() + long(n)))
        << "prompt " << i << ", prefill_chunk " << prefill_chunk;
  }
}

TEST_P(Stories260kBackend, BatchedGenerationEqualsSingle) {
  auto m = load_model(dir() + "/stories260K.bin");
  Transformer tf(*m, test::attention(GetParam()));
  expect_batch_matches_run_c(tf, *m, run_c_generations(), 0);
}

// Chunked prefill (GenerateOptions::prefill_chunk, as the GPU engine cuts prompts): without KV
// plugins it is the same computation cut into forwards, so run.c's generations still come out with
// chunks of 3, and loglikelihood's log-probabilities agree within float rounding. With KIVI KV the
// chunks decide what each forward sees quantized: forward_in_chunks gives, bit for bit, the logits
// of the loop of forwards a caller would write, which differ from one forward's once a group
// completes inside the prompt.
TEST(Stories260k, ChunkedPrefillIsTheSameForwardsCutIntoChunks) {
  auto m = load_model(dir() + "/stories260K.bin");
  Transformer tf(*m, test::attention("sdpa"));
  const RunCGenerations gens = run_c_generations();
  ASSERT_EQ(gens.prompts.size(), gens.expected.size());
  expect_batch_matches_run_c(tf, *m, gens, 3);
  const auto& [prompts, expected] = gens;
  std::vector<LoglikRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (expected[i].size() >= 6) requests.push_back({prompts[i], std::vector<int32_t>(expected[i].begin(), expected[i].begin() + 6)});
  ASSERT_GE(requests.size(), 10u);
  const auto whole = loglikelihood(tf, requests), chunked = loglikelihood(tf, requests, 4096, 4);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_NEAR(chunked[i].logprob, whole[i].logprob, 1e-4 * (1 + std::fabs(whole[i].logprob))) << "request " << i;
    EXPECT_EQ(chunked[i].is_greedy, whole[i].is_greedy) << "request " << i;
  }
  // KIVI: groups of 4 behind a residual of 2, so the second chunk of 8 already sees 4 quantized keys.
  KvQuantConfig q;
  q.bits = 4, q.group = 4, q.residual = 2;
  tf.set_kv_quantization(q);
  std::vector<int32_t> ids = prompts.back();
  ids.insert(ids.end(), expected.back().begin(), expected.back().end());
  ASSERT_GE(ids.size(), 30u);
  const int64_t len = int64_t(ids.size()), chunk = 8;
  KvCache a = tf.new_cache(len), b = tf.new_cache(len), c = tf.new_cache(len);
  const std::vector<float> by_chunks = forward_in_chunks(tf, {SequenceStep{&a, ids, 0}}, chunk);
  std::vector<float> loop;
  for (int64_t at = 0; at < len; at += chunk) {
    const SequenceStep step{&b, std::span<const int32_t>(ids).subspan(size_t(at), size_t(std::min(chunk, len - at))), 0};
    const auto rows = tf.forward(std::span<const SequenceStep>(&step, 1));
    loop.insert(loop.end(), rows.begin(), rows.end());
  }
  EXPECT_EQ(by_chunks, loop);
  const SequenceStep all{&c, ids, 0};
  const auto one = tf.forward(std::span<const SequenceStep>(&all, 1));
  ASSERT_EQ(one.size(), by_chunks.size());
  EXPECT_NE(one, by_chunks) << "with KIVI, one forward and chunks of 8 quantize at different points";
  EXPECT_EQ(a.length(0), len);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, Stories260kBackend, ::testing::ValuesIn(test::attention_names()),
                         [](const auto& info) { return info.param; });

TEST(Stories260k, HfConversionGivesTheSameTokensAndItsReferenceLogits) {
  const std::string hf_dir = test::shared_path("fixtures/hf/stories260k_hf");
  auto hf = load_model(hf_dir);
  auto bin = load_model(dir() + "/stories260K.bin");
  EXPECT_EQ(hf->config.rope.layout, RopeLayout::kRotateHalf);
  auto ref = SafetensorsFile::open(hf_dir + "/reference.safetensors");
  std::vector<int64_t> shape;
  const auto generated = test::ids_tensor(ref.index(), "generated", &shape);
  ASSERT_GE(generated.size(), 2u);
  ASSERT_EQ(generated[0], 1);
  const std::vector<int32_t> expected(generated.begin() + 1, generated.end());
  GenerateOptions opt;
  opt.max_new_tokens = int64_t(expected.size());
  for (Model* m : {hf.get(), bin.get()}) {
    Transformer tf(*m, test::attention());
    EXPECT_EQ(generate_greedy(tf, {{1}}, opt)[0].tokens, expected) << m->format;
  }
  // Same logits from both layouts on a teacher-forced sequence.
  Transformer a(*hf, test::attention()), b(*bin, test::attention());
  KvCache ca = a.new_cache(), cb = b.new_cache();
  SequenceStep sa{&ca, generated, 0}, sb{&cb, generated, 0};
  const auto la = a.forward({&sa, 1}), lb = b.forward({&sb, 1});
  EXPECT_LE(test::compare(la.data(), lb.data(), int64_t(la.size())).relative(), 1e-5);
  // transformers' logits after BOS.
  const auto ref_logits = test::f32_tensor(ref.index(), "logits", &shape);
  ASSERT_EQ(ref_logits.size(), 512u);
  EXPECT_LE(test::compare(la.data(), ref_logits.data(), 512).relative(), 1e-4);
}

}  // namespace
}  // namespace ctx
