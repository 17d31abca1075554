// The GPU attention kernel (core/cuda/gpu_attention.h, the forward pass's kernel) against a float64
// reference computed here on the same bf16-rounded inputs, over the shapes the CPU backends'
// conformance test covers: head dims (the generic kernel and the vectorised 64/128/256 one), GQA
// ratios, sliding windows, prefill (several queries) and decode (one query) at lengths that give
// empty, partial and many split-KV chunks, chosen and explicit split counts. Label "gpu".
// Tolerance: the kernel rounds its output to bf16 (relative error <= 2^-9) after float32
// accumulation, so |got - ref| <= 2^-8 |ref| + 1e-3 max|ref| per element.
// The same cases run through a paged pool (block sizes 1..256, blocks in shuffled order) and as
// batched decode of sequences of mixed lengths (contiguous regions and paged).
#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/cuda/gpu_attention.h"
#include "tests/gpu/attention_reference.h"

namespace ctx::cuda {
namespace {

struct Case {
  int64_t heads, kv_heads, head_dim, length, queries, window;
  int splits;
  int64_t block_size = 0;              // > 0: paged
  std::vector<int64_t> batch = {};     // not empty: batched decode of sequences of these lengths
  std::string name() const {
    std::string n = "h" + std::to_string(heads) + "_kv" + std::to_string(kv_heads) + "_d" + std::to_string(head_dim);
    if (batch.empty()) {
      n += "_len" + std::to_string(length) + "_q" + std::to_string(queries);
    } else {
      n += "_batch";
      for (int64_t l : batch) n += "_" + std::to_string(l);
    }
    n += "_win" + std::to_string(window) + "_split" + std::to_string(splits);
    if (block_size > 0) n += "_paged" + std::to_string(block_size);
    return n;
  }
};

std::vector<Case> cases() {
  std::vector<Case> out;
  for (int64_t hd : {32, 48, 64, 80, 128, 256})
    for (auto [heads, kv] : {std::pair<int64_t, int64_t>{4, 4}, {8, 2}, {4, 1}}) {
      out.push_back({heads, kv, hd, 300, 300, 0, 0});  // prefill, one chunk
      out.push_back({heads, kv, hd, 1, 1, 0, 0});      // the first token
      out.push_back({heads, kv, hd, 1000, 1, 0, 0});   // decode, 16 chunks
      out.push_back({heads, kv, hd, 1000, 1, 37, 0});  // decode in a window
    }
  for (int splits : {1, 3, 7, 64, 256}) {  // explicit chunk counts, including more chunks than keys
    out.push_back({8, 2, 128, 200, 1, 0, splits});
    out.push_back({8, 2, 64, 5, 1, 0, splits});
  }
  out.push_back({4, 2, 128, 96, 32, 0, 4});     // several queries, split
  out.push_back({4, 2, 128, 257, 40, 50, 0});   // prefill in a window
  out.push_back({32, 32, 128, 4096, 1, 0, 0});  // Llama-2-7B's decode shape at 4k
  // Paged: every block size the issue names (and the extremes), decode, prefill, windows.
  for (int64_t bs : {1, 8, 16, 32, 64, 128, 256}) {
    out.push_back({8, 2, 128, 1000, 1, 0, 0, bs});
    out.push_back({4, 1, 80, 1000, 1, 37, 0, bs});  // the generic kernel in a window
  }
  out.push_back({4, 4, 64, 300, 300, 0, 0, 16});    // paged prefill
  out.push_back({4, 2, 256, 257, 40, 50, 0, 8});    // paged prefill in a window
  // Batched decode of mixed lengths (1, a partial block, several chunks), contiguous and paged.
  const std::vector<int64_t> mixed = {1, 17, 300, 1000, 64, 129};
  for (int64_t bs : {0, 8, 16, 128}) {
    out.push_back({8, 2, 128, 0, 1, 0, 0, bs, mixed});
    out.push_back({4, 4, 64, 0, 1, 0, 7, bs, mixed});
    out.push_back({4, 1, 48, 0, 1, 37, 0, bs, mixed});
  }
  out.push_back({32, 8, 128, 0, 1, 0, 0, 16, {4096, 2048, 1000, 333}});
  return out;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

class GpuAttention : public ::testing::TestWithParam<Case> {};

TEST_P(GpuAttention, MatchesTheFloat64Reference) {
  const Case& k = GetParam();
  GpuAttentionCase c;
  c.heads = k.heads, c.kv_heads = k.kv_heads, c.head_dim = k.head_dim, c.length = k.length, c.queries = k.queries;
  c.window = k.window, c.splits = k.splits, c.block_size = k.block_size, c.batch_lengths = k.batch;
  const auto [q, kk, v] = attention_ref::random_inputs(c, uint32_t(std::hash<std::string>()(k.name())));
  const auto want = attention_ref::reference_attention(c, q, kk, v);
  for (bool vectorized : {true, false}) {
    c.vectorized = vectorized;
    const auto d = attention_ref::compare_to_reference(gpu_attention(c, q, kk, v), want);
    std::printf("%s %s: max |gpu - ref| / max|ref| = %.3g\n", k.name().c_str(), vectorized ? "vectorised" : "generic",
                d.worst);
    EXPECT_EQ(d.bad, 0u) << k.name() << (vectorized ? " vectorised" : " generic") << ": worst " << d.worst;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuAttention, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name(); });

TEST(GpuAttentionErrors, BadCasesAreClearErrors) {
  GpuAttentionCase c;
  c.heads = 6, c.kv_heads = 4, c.head_dim = 64, c.length = 8;
  const std::vector<float> q(6 * 64), kv(8 * 4 * 64);
  try {
    gpu_attention(c, q, kv, kv);
    FAIL() << "expected an error";
  } catch (const Unsupported&) {
    GTEST_SKIP() << "no GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of kv_heads"), std::string::npos) << e.what();
  }
  c.heads = 4, c.block_size = 24;
  try {
    gpu_attention(c, std::vector<float>(4 * 64), kv, kv);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("power of two"), std::string::npos) << e.what();
  }
  c.block_size = 16, c.batch_lengths = {8, 0};
  try {
    gpu_attention(c, std::vector<float>(2 * 4 * 64), kv, kv);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch_lengths[1]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ctx::cuda
