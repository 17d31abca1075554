// Paged KV and batched decode in the CUDA engine (core/cuda/gpu_engine.h, gpu_kv_cache.h); label
// "gpu", built into gpu_engine_test.
// - Paged KV runs the same kernels in the same order as the contiguous cache, only reading and writing
//   through a block table: logits must be identical bit for bit, for every block size, with sliding
//   windows and q/k norm, prefill in chunks that cross blocks and decode one token at a time. (Chunks
//   of 48 tokens: split-KV attention both ways. From 64 tokens on, prefill takes the flash kernels,
//   where the contiguous cache on Hopper gets the TMA one and paged the wgmma one: within bf16
//   rounding, not bit for bit; gpu_engine_test's GpuPagedPrefill.)
// - Batched decode of prompts of different lengths must give each prompt's greedy tokens alone, on
//   the real stories260K model (its distributions are peaked: float rounding differences between the
//   batched GEMMs and the single-sequence GEMVs do not flip its argmax), with and without CUDA graphs,
//   contiguous and paged, and stop ids ending each sequence on its own.
// - The pool: blocks held follow the tokens, exhaustion is CudaOutOfMemory, bad batches are errors.
// - A flex mask (the `flex` plugin's, as gpu_flex_mask() gives it) on the engine against the CPU
//   engine with that plugin: bf16 tolerance (2e-2 relative, as gpu_engine_test), prompt and decode.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/cuda/gpu_engine.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "plugins/register_all.h"
#include "tests/gpu/gpu_engine_support.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda {
namespace {

using gpu_test::token_ids;

std::unique_ptr<GpuEngine> create_or_skip(const Model& model, const GpuEngineOptions& opt) {
  try {
    return GpuEngine::create(model, opt);
  } catch (const Unsupported& e) {
    return nullptr;
  }
}

// Whole-prompt logits (prefill in chunks of 48), then 6 tokens one by one, then greedy tokens.
struct RunResult {
  std::vector<float> prefill, steps;
  std::vector<int32_t> greedy;
};

RunResult run_model(const Model& model, int64_t block_size) {
  GpuEngineOptions opt;
  opt.capacity = 256, opt.prefill_chunk = 48, opt.kv_block_size = block_size;
  auto engine = GpuEngine::create(model, opt);
  const auto ids = token_ids(200, model.config.vocab_size, 1);
  RunResult r;
  r.prefill = engine->forward(std::span<const int32_t>(ids.data(), 194), true);
  for (size_t i = 194; i < ids.size(); ++i) {
    const auto row = engine->forward(std::span<const int32_t>(&ids[i], 1), false);
    r.steps.insert(r.steps.end(), row.begin(), row.end());
  }
  r.greedy = engine->generate_greedy(std::span<const int32_t>(ids.data(), 150), 40, {}, nullptr);
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class GpuPagedFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuPagedFixture, PagedKvGivesTheContiguousLogitsBitForBit) {
  const auto model = load_model(test::shared_path("fixtures/hf/" + GetParam()));
  if (!create_or_skip(*model, {})) GTEST_SKIP() << "no GPU";
  const RunResult contiguous = run_model(*model, 0);
  for (int64_t bs : {1, 8, 16, 64, 128}) {
    const RunResult paged = run_model(*model, bs);
    EXPECT_TRUE(same_bits(paged.prefill, contiguous.prefill)) << GetParam() << " block size " << bs << ": prefill";
    EXPECT_TRUE(same_bits(paged.steps, contiguous.steps)) << GetParam() << " block size " << bs << ": decode";
    EXPECT_EQ(paged.greedy, contiguous.greedy) << GetParam() << " block size " << bs;
  }
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, GpuPagedFixture, ::testing::Values("llama", "mistral_swa", "qwen3"));

std::vector<std::vector<int32_t>> mixed_prompts(int64_t vocab) {
  // Lengths 1, 5, 17 and 60 (stories260K: 1 is BOS).
  std::vector<std::vector<int32_t>> p;
  for (int64_t n : {1, 5, 17, 60}) {
    auto ids = token_ids(n, vocab, n);
    ids[0] = 1;
    p.push_back(ids);
  }
  return p;
}

TEST(GpuBatch, BatchedGreedyGivesEachPromptsTokensAlone) {
  const auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  if (!create_or_skip(*model, {})) GTEST_SKIP() << "no GPU";
  const auto prompts = mixed_prompts(model->config.vocab_size);
  GpuEngineOptions single;
  single.capacity = 128;
  auto alone = GpuEngine::create(*model, single);
  std::vector<std::vector<int32_t>> want;
  for (const auto& p : prompts) want.push_back(alone->generate_greedy(p, 48, {}, nullptr));
  for (int64_t bs : {0, 16})
    for (bool graphs : {true, false}) {
      GpuEngineOptions opt;
      opt.capacity = 128, opt.max_batch = 4, opt.kv_block_size = bs, opt.use_graphs = graphs;
      auto engine = GpuEngine::create(*model, opt);
      GpuTimings t;
      const auto got = engine->generate_greedy_batch(prompts, 48, {}, &t);
      EXPECT_EQ(got, want) << "block size " << bs << (graphs ? " with graphs" : " without graphs");
      EXPECT_EQ(t.decode_steps, 47);
      // A second batch in the same engine (the graph is reused), in another order and size.
      const std::vector<std::vector<int32_t>> two = {prompts[3], prompts[0]};
      EXPECT_EQ(engine->generate_greedy_batch(two, 48, {}, nullptr),
                (std::vector<std::vector<int32_t>>{want[3], want[0]}));
      // The single-sequence path of the same engine still agrees.
      EXPECT_EQ(engine->generate_greedy(prompts[2], 48, {}, nullptr), want[2]);
    }
}

TEST(GpuBatch, StopIdsEndEachSequenceOnItsOwn) {
  const auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  GpuEngineOptions opt;
  opt.capacity = 128, opt.max_batch = 4, opt.kv_block_size = 8;
  auto engine = create_or_skip(*model, opt);
  if (!engine) GTEST_SKIP() << "no GPU";
  const auto prompts = mixed_prompts(model->config.vocab_size);
  const auto full = engine->generate_greedy_batch(prompts, 40, {}, nullptr);
  const int32_t stop = full[1][9];  // a token of the second sequence
  const auto cut = engine->generate_greedy_batch(prompts, 40, {stop}, nullptr);
  for (size_t s = 0; s < prompts.size(); ++s) {
    const auto first = std::find(full[s].begin(), full[s].end(), stop);
    const std::vector<int32_t> expected(full[s].begin(), first == full[s].end() ? first : first + 1);
    EXPECT_EQ(cut[s], expected) << "sequence " << s;
  }
}

TEST(GpuBatch, PagedPoolHoldsWhatSequencesNeedAndReportsExhaustion) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  GpuEngineOptions opt;
  opt.capacity = 256, opt.max_batch = 4, opt.kv_block_size = 16, opt.kv_pool_positions = 160;  // 10 blocks
  auto engine = create_or_skip(*model, opt);
  if (!engine) GTEST_SKIP() << "no GPU";
  const ModelConfig& mc = model->config;
  const int64_t block_bytes = 2 * mc.num_kv_layers() * mc.num_kv_heads * 16 * mc.head_dim * 2;  // K and V, bf16
  EXPECT_EQ(engine->kv_cache_bytes(), 0) << "the pool starts empty and grows with the blocks sequences take";
  EXPECT_EQ(engine->kv_cache_bytes_in_use(), 0);
  // 20 + 13 - 1 = 32 positions: 2 blocks; 40 + 13 - 1 = 52: 4 blocks.
  const auto a = token_ids(20, model->config.vocab_size, 2), b = token_ids(40, model->config.vocab_size, 3);
  engine->generate_greedy_batch({a, b}, 13, {}, nullptr);
  EXPECT_EQ(engine->kv_cache_bytes_in_use(), 6 * block_bytes);
  EXPECT_GE(engine->kv_cache_bytes(), 6 * block_bytes);
  EXPECT_LE(engine->kv_cache_bytes(), 10 * block_bytes);
  // 2 + 4 + 7 blocks needed, 10 in the pool: out of memory, named; the engine works afterwards.
  const auto c = token_ids(100, model->config.vocab_size, 4);
  try {
    engine->generate_greedy_batch({a, b, c}, 13, {}, nullptr);
    FAIL() << "expected CudaOutOfMemory";
  } catch (const CudaOutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("KV pool exhausted"), std::string::npos) << e.what();
    EXPECT_GT(e.requested_bytes, e.free_bytes);
  }
  EXPECT_EQ(engine->generate_greedy_batch({a}, 13, {}, nullptr).size(), 1u);
  EXPECT_EQ(engine->kv_cache_bytes_in_use(), 2 * block_bytes);
  // The contiguous cache holds max_batch * capacity positions whatever the batch.
  GpuEngineOptions flat = opt;
  flat.kv_block_size = 0;
  auto contiguous = GpuEngine::create(*model, flat);
  EXPECT_EQ(contiguous->kv_cache_bytes(), block_bytes / 16 * 4 * 256);
}

TEST(GpuFlex, MasksMatchTheCpuFlexBackend) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  if (!create_or_skip(*model, {})) GTEST_SKIP() << "no GPU";
  const auto ids = token_ids(120, model->config.vocab_size, 5);
  GpuEngineOptions opt;
  opt.capacity = 256, opt.prefill_chunk = 128;
  auto causal = GpuEngine::create(*model, opt);
  const auto plain = causal->forward(ids, true);
  for (const char* spec : {"flex:mask=prefix_lm,prefix=40", "flex:mask=document,documents=[30,50,40]",
                           "flex:mask=(document|prefix_lm)&sliding_window,prefix=20,window=24,documents=[70,50]",
                           "flex:mask=chunked,chunk=16"}) {
    const auto backend = builtin_catalog().attention.create(spec);
    const std::vector<float> want = gpu_test::cpu_prompt_logits(*model, spec, ids);
    opt.flex_mask = backend->gpu_flex_mask();
    auto engine = GpuEngine::create(*model, opt);
    const auto got = engine->forward(ids, true);
    const double err = test::relative_l2(got.data(), want.data(), want.size());
    const double from_causal = test::relative_l2(plain.data(), want.data(), want.size());
    // The last 8 tokens one by one (the decode kernel's interval) after the others at once.
    engine->reset();
    engine->forward(std::span<const int32_t>(ids.data(), ids.size() - 8), false);
    std::vector<float> steps;
    for (size_t i = ids.size() - 8; i < ids.size(); ++i) {
      const auto row = engine->forward(std::span<const int32_t>(&ids[i], 1), false);
      steps.insert(steps.end(), row.begin(), row.end());
    }
    const std::vector<float> want_steps(want.end() - int64_t(steps.size()), want.end());
    const double step_err = test::relative_l2(steps.data(), want_steps.data(), want_steps.size());
    std::printf("%s: ||gpu - cpu|| / ||cpu|| = %.3g (decode %.3g); plain causal is %.3g away\n", spec, err, step_err,
                from_causal);
    EXPECT_LE(err, 2e-2) << spec;
    EXPECT_LE(step_err, 2e-2) << spec;
  }
  // A score mod comes apart from the mask (gpu_eager_test.cc runs them).
  const auto alibi = builtin_catalog().attention.create("flex:score=alibi");
  EXPECT_EQ(alibi->gpu_flex_mask().count, 1);
  EXPECT_EQ(alibi->gpu_score_mod().count, 1);
}

TEST(GpuBatch, BadBatchesAreErrors) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  GpuEngineOptions opt;
  opt.capacity = 32, opt.max_batch = 2;
  auto engine = create_or_skip(*model, opt);
  if (!engine) GTEST_SKIP() << "no GPU";
  const std::vector<int32_t> p{1, 2, 3};
  EXPECT_THROW(engine->generate_greedy_batch({}, 4, {}, nullptr), Error);
  EXPECT_THROW(engine->generate_greedy_batch({p, p, p}, 4, {}, nullptr), Error);
  EXPECT_THROW(engine->generate_greedy_batch({p, {}}, 4, {}, nullptr), Error);
  EXPECT_THROW(engine->generate_greedy_batch({p, std::vector<int32_t>(30, 1)}, 4, {}, nullptr), Error);
  GpuEngineOptions bad = opt;
  bad.kv_block_size = 24;
  EXPECT_THROW(GpuEngine::create(*model, bad), Error);
  bad.kv_block_size = 0, bad.max_batch = 64;  // > capacity
  EXPECT_THROW(GpuEngine::create(*model, bad), Error);
}

}  // namespace
}  // namespace ctx::cuda
