// `flash`-specific paths, compared with `eager` in float64 (eager:precision=double): decode split-KV
// with several num_splits, tiles whose blocks do not divide the lengths, and sliding-window edges
// that fall inside, on and just past tile boundaries. Tolerance: 2e-5 of max |out|.
#include <gtest/gtest.h>
#include <omp.h>

#include <string>
#include <vector>

#include "tests/plugins/attention_problem.h"
#include "tests/support/attention.h"

namespace ctx {
namespace {

using test::AttentionProblem;
using test::SeqShape;

constexpr double kTolerance = 2e-5;

AttentionParams params(int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t window = 0) {
  return {heads, kv_heads, head_dim, float(1.0 / std::sqrt(double(head_dim))), window};
}

// Runs `spec` and eager (float64) on the same problem; returns the relative difference.
double versus_eager(const std::string& spec, AttentionProblem& pr) {
  pr.run(*test::attention("eager:precision=double"));
  const auto ref = pr.outputs();
  pr.run(*test::attention(spec));
  return pr.relative_error(ref);
}

TEST(FlashAttention, DecodeSplitKvMatchesEager) {
  // Decode rows (1..4 new rows) over long and short caches; lengths not multiples of block_kv.
  const std::vector<SeqShape> batch = {{1000, 1}, {37, 1}, {513, 2}, {300, 4}, {1, 1}, {129, 3}};
  uint32_t seed = 1;
  for (const char* splits : {"1", "2", "7", "0"})
    for (const char* blocks : {"block_kv=64", "block_kv=16", "block_kv=5,block_q=3"})
      for (int64_t window : {0, 100}) {
        const std::string spec = std::string("flash:num_splits=") + splits + "," + blocks;
        SCOPED_TRACE(spec + " window " + std::to_string(window));
        AttentionProblem pr(params(8, 2, 64, window), batch, seed++);
        EXPECT_LE(versus_eager(spec, pr), kTolerance);
      }
}

TEST(FlashAttention, AutoSplitsWithManyThreads) {
  // With more threads than (sequence, KV head) items, auto picks several splits per item.
  const int saved = omp_get_max_threads();
  omp_set_num_threads(16);
  AttentionProblem pr(params(4, 1, 128), {{4000, 1}, {2500, 2}}, 3);
  EXPECT_LE(versus_eager("flash", pr), kTolerance);
  AttentionProblem mha(params(2, 2, 80, 1000), {{3000, 1}}, 4);
  EXPECT_LE(versus_eager("flash:num_splits=0,block_kv=32", mha), kTolerance);
  omp_set_num_threads(saved);
}

TEST(FlashAttention, PrefillTilesNotMultiplesOfBlocks) {
  // Prefill and chunked prefill (n_new < length) with lengths around the block sizes.
  const std::vector<SeqShape> batch = {{1, 1}, {7, 7}, {63, 63}, {65, 65}, {130, 130}, {257, 257}, {300, 77}, {200, 5}};
  uint32_t seed = 10;
  for (const char* blocks : {"block_q=64,block_kv=64", "block_q=16,block_kv=48", "block_q=1,block_kv=1",
                             "block_q=7,block_kv=5", "block_q=128,block_kv=32"})
    for (int64_t hd : {64, 80, 128, 20, 3}) {
      const std::string spec = std::string("flash:") + blocks;
      SCOPED_TRACE(spec + " head_dim " + std::to_string(hd));
      AttentionProblem pr(params(4, 2, hd), batch, seed++);
      EXPECT_LE(versus_eager(spec, pr), kTolerance);
    }
}

TEST(FlashAttention, WindowEdges) {
  // Windows below, equal to and just past the block size and the lengths; GQA 1, 4 and 8.
  const std::vector<SeqShape> batch = {{64, 64}, {128, 128}, {300, 300}, {400, 1}, {129, 2}};
  uint32_t seed = 50;
  for (int64_t window : {1, 2, 63, 64, 65, 127, 128, 129, 299, 300, 1000})
    for (const auto& [heads, kv_heads] : {std::pair{4, 4}, std::pair{8, 2}, std::pair{8, 1}}) {
      SCOPED_TRACE("window " + std::to_string(window) + " heads " + std::to_string(heads) + "/" + std::to_string(kv_heads));
      AttentionProblem pr(params(heads, kv_heads, 64, window), batch, seed++);
      EXPECT_LE(versus_eager("flash", pr), kTolerance);
      EXPECT_LE(versus_eager("flash:block_q=32,block_kv=64,num_splits=3", pr), kTolerance);
    }
}

TEST(FlashAttention, SharpSoftmaxAndGraniteScale) {
  // Large scores (a multiplier instead of 1/sqrt(d)): the online softmax must rescale correctly.
  AttentionProblem pr(AttentionParams{8, 2, 64, 0.5f, 0}, {{500, 500}, {700, 1}}, 77, 3.0f);
  EXPECT_LE(versus_eager("flash:block_kv=32", pr), kTolerance);
  EXPECT_LE(versus_eager("flash:num_splits=4", pr), kTolerance);
}

TEST(FlashAttention, RejectsPagedLayout) {
  const auto backend = test::attention("flash");
  EXPECT_FALSE(backend->supports(params(4, 4, 64), KvLayout::kPaged).ok);
  EXPECT_TRUE(backend->supports(params(4, 4, 7), KvLayout::kContiguous).ok);
}

}  // namespace
}  // namespace ctx
