// The GPU engine's device memory as sequences grow (label "gpu", built into gpu_engine_test):
// - a paged pool starts empty and grows chunk by chunk as the prompt is prefilled (each growth moves
//   the layers' buffers: the greedy tokens still equal the contiguous cache's, also when a captured
//   decode graph predates the growth), to exactly the blocks of the prompt plus the decode steps;
// - with KV compression after each prefill chunk the pool's high-water mark is the compressed cache
//   plus one chunk (computed here from the budget, core/kv/kv_budget.h), not the prompt;
// - under a memory limit that the compressed run fits, the uncompressed paged run of the same prompt
//   ends in CudaOutOfMemory naming the limit (not a crash), and the engine then serves a shorter
//   prompt with the contiguous cache's tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/cuda/gpu_engine.h"
#include "core/model/model_loader.h"
#include "plugins/register_all.h"
#include "tests/gpu/gpu_engine_support.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda {
namespace {

using gpu_test::have_gpu;
using gpu_test::policy_of;

std::vector<int32_t> ids_of(int64_t n, int64_t vocab, int64_t seed) {
  return gpu_test::spread_ids(n, vocab, 29, seed * 131 + 7);
}

std::unique_ptr<Model> llama() { return load_model(test::shared_path("fixtures/hf/llama")); }

// Bytes of one pool block of 16 positions: K and V of every attention layer, bf16.
int64_t block_bytes(const ModelConfig& c) { return 2 * c.num_kv_layers() * c.num_kv_heads * 16 * c.head_dim * 2; }

GpuEngineOptions options(int64_t block_size, const std::string& kv, int64_t chunk) {
  GpuEngineOptions opt;
  opt.capacity = 4200, opt.prefill_chunk = chunk, opt.kv_block_size = block_size, opt.kv = policy_of(kv);
  return opt;
}

TEST(GpuMemory, PagedPoolGrowsChunkByChunkWithTheContiguousTokens) {
  const auto model = llama();
  if (!have_gpu(*model)) GTEST_SKIP() << "no GPU";
  const int64_t vocab = model->config.vocab_size;
  const auto short_prompt = ids_of(40, vocab, 1), long_prompt = ids_of(1000, vocab, 2);
  auto contiguous = GpuEngine::create(*model, options(0, "none", 128));
  auto paged = GpuEngine::create(*model, options(16, "none", 128));
  EXPECT_EQ(paged->kv_cache_bytes(), 0);
  // Short first: its decode graph is captured over a small pool, which the long prompt then moves.
  EXPECT_EQ(paged->generate_greedy(short_prompt, 12, {}, nullptr), contiguous->generate_greedy(short_prompt, 12, {}, nullptr));
  const int64_t short_bytes = paged->kv_cache_bytes();
  EXPECT_EQ(paged->generate_greedy(long_prompt, 12, {}, nullptr), contiguous->generate_greedy(long_prompt, 12, {}, nullptr));
  // 1000 + 11 positions: 64 blocks of 16 (the fixture's layer buffers are below 1 MiB: rounded to
  // 512 bytes, a multiple of its blocks, so the pool is exactly that).
  EXPECT_LT(short_bytes, paged->kv_cache_bytes());
  EXPECT_EQ(paged->kv_cache_bytes(), 64 * block_bytes(model->config));
  EXPECT_LT(paged->kv_cache_bytes(), contiguous->kv_cache_bytes());
  // Again over the grown pool (no growth, the graph is kept): the same tokens.
  EXPECT_EQ(paged->generate_greedy(short_prompt, 12, {}, nullptr), contiguous->generate_greedy(short_prompt, 12, {}, nullptr));
}

TEST(GpuMemory, CompressionAfterEachChunkBoundsThePoolByTheCompressedCachePlusOneChunk) {
  const auto model = llama();
  if (!have_gpu(*model)) GTEST_SKIP() << "no GPU";
  const std::string spec = "l2norm:keep_ratio=0.25,skip_layers=[]";
  const int64_t chunk = 128, prompt_len = 1000, new_tokens = 12;
  const auto prompt = ids_of(prompt_len, model->config.vocab_size, 3);
  auto contiguous = GpuEngine::create(*model, options(0, spec, chunk));
  auto paged = GpuEngine::create(*model, options(16, spec, chunk));
  EXPECT_EQ(paged->generate_greedy(prompt, new_tokens, {}, nullptr),
            contiguous->generate_greedy(prompt, new_tokens, {}, nullptr));
  // Entries before each chunk's forward: the budget of the tokens seen (after the first chunk) plus
  // the chunk; after the prompt the kept entries plus the decode steps.
  const KvBudget budget = KvBudget::from(builtin_catalog().kv.resolve(spec).params, "test");
  int64_t peak = 0, held = 0;
  for (int64_t start = 0; start < prompt_len; start += chunk) {
    const int64_t n = std::min(chunk, prompt_len - start);
    peak = std::max(peak, held + n);
    held = std::min(held + n, budget.target(start + n));
  }
  peak = std::max(peak, held + new_tokens - 1);
  const int64_t blocks = (peak + 15) / 16;
  EXPECT_EQ(paged->kv_cache_bytes(), blocks * block_bytes(model->config)) << "peak entries " << peak;
  EXPECT_LT(blocks * 3, (prompt_len + new_tokens + 15) / 16) << "the compressed pool is well below the prompt's";
}

TEST(GpuMemory, UnderALimitTheUncompressedRunIsOutOfMemoryAndTheEngineGoesOn) {
  const auto model = llama();
  if (!have_gpu(*model)) GTEST_SKIP() << "no GPU";
  const std::string spec = "l2norm:keep_ratio=0.25,skip_layers=[]";
  const auto prompt = ids_of(4000, model->config.vocab_size, 4), short_prompt = ids_of(100, model->config.vocab_size, 5);
  // The compressed run's whole peak (creation included) is the limit: the same run under it fits.
  int64_t limit = 0;
  std::vector<int32_t> compressed_tokens;
  {
    auto probe = GpuEngine::create(*model, options(16, spec, 256));
    compressed_tokens = probe->generate_greedy(prompt, 8, {}, nullptr);
    limit = probe->memory().peak_bytes;
  }
  GpuEngineOptions limited = options(16, spec, 256);
  limited.memory_limit_bytes = limit;
  EXPECT_EQ(GpuEngine::create(*model, limited)->generate_greedy(prompt, 8, {}, nullptr), compressed_tokens);
  // Without compression the pool must hold all 4007 positions (1 MiB here, about 3.5x the compressed
  // pool): the growth is refused by the allocator's limit, during the prefill.
  limited.kv = policy_of("none");
  auto engine = GpuEngine::create(*model, limited);
  try {
    engine->generate_greedy(prompt, 8, {}, nullptr);
    FAIL() << "expected CudaOutOfMemory under a limit of " << limit << " bytes";
  } catch (const CudaOutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("memory limit"), std::string::npos) << e.what();
    EXPECT_GT(e.requested_bytes, e.free_bytes) << e.what();
  }
  EXPECT_LE(engine->memory().peak_bytes, limit);
  auto contiguous = GpuEngine::create(*model, options(0, "none", 256));
  EXPECT_EQ(engine->generate_greedy(short_prompt, 8, {}, nullptr), contiguous->generate_greedy(short_prompt, 8, {}, nullptr));
}

}  // namespace
}  // namespace ctx::cuda
