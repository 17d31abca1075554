// The GPU attention kernel (core/cuda/gpu_attention.h, the forward pass's kernel) against a float64
// reference (tests/gpu/attention_reference.h) on the same bf16-rounded inputs, over the shapes the CPU backends
// conformance test covers: head dims (the generic kernel and the vectorised 64/128/256 one), GQA
// ratios, sliding windows, prefill (several queries) and decode (one query) at lengths that give
// empty, partial and many split-KV chunks, chosen and explicit split counts. Label "gpu".
// Tolerance: the kernel rounds its output to bf16 (relative error <= 2^-9) after float32
// accumulation, so |got - ref| <= 2^-8 |ref| + 1e-3 max|ref| per element.
// The split-KV kernel runs vectorised as the engine does (GQA at head_dim 64/128 on tensor cores,
// prefetching a warp's next keys, P.V with the weights split into two 16-bit parts, so float32
// precision), on CUDA cores only, on tensor cores for every head grouping, and generic.
// The same cases run through a paged pool (block sizes 1..256, blocks in shuffled order) and as
// batched decode of sequences of mixed lengths (contiguous regions and paged). Every one-sequence
// case at head_dim 64/128 (decode rows included), contiguous or paged, also runs through the
// tensor-core prefill kernels (kernel = kFlash, and kFlashWgmma and kFlashTma on a Hopper GPU; every
// block shape; the TMA kernel hands paged K/V to the wgmma 64x4 one): prompts whose length is not a
// multiple of the tile, chunks after cached tokens, windows cutting tiles, GQA, and paged through
// block sizes 8, 16 and 128 in shuffled pool order (a 64-key tile over 8, 4 or part of one block)
// with flex masks. They round
// the softmax weights to bf16 before P.V (as FlashAttention does), which can move an output by up
// to 2^-9 sum_j w_j |v_j|; their tolerance adds that bound (the float64 reference computes it).
// Eager attention (kernel = kEager: float32 scores materialised by cuBLAS, a softmax kernel, bf16
// weights into the P.V GEMM) takes the same tolerance, on every one-sequence contiguous case of
// this list and on every case of the CPU backends' conformance test (tests/plugins/
// attention_conformance_test.cc: each sequence of its batches alone, its windows and scales).
// Score mods (softcap, ALiBi and both orders, alone and with flex masks and windows) run through
// every kernel that has the hook: split-KV (vectorised, generic, batched decode), the mma.sync and
// wgmma flash kernels and eager, against the float64 reference applying the mods' definitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/gpu_attention.h"
#include "tests/gpu/attention_reference.h"

namespace ctx::cuda {
namespace {

using attention_ref::compare_to_reference;
using attention_ref::reference_attention;

// Flex masks the cases use (index 0: none): each named mask, and/or compositions.
struct NamedFlex {
  const char* name;
  FlexMask mask;
};

FlexMask flex_program(std::initializer_list<std::pair<FlexMask::Op, int64_t>> ops, std::vector<int64_t> documents = {}) {
  FlexMask m;
  for (auto [op, arg] : ops) m.ops[m.count] = op, m.args[m.count++] = arg;
  int64_t start = 0;
  for (int64_t len : documents) m.starts[m.documents++] = start, start += len;
  return m;
}

const std::vector<NamedFlex>& flex_masks() {
  using M = FlexMask;
  static const std::vector<NamedFlex> all = {
      {"", {}},
      {"causal", flex_program({{M::kCausal, 0}})},
      {"window100", flex_program({{M::kSlidingWindow, 100}})},
      {"prefix200", flex_program({{M::kPrefixLm, 200}})},
      {"chunk64", flex_program({{M::kChunked, 64}})},
      {"documents", flex_program({{M::kDocument, 0}}, {100, 57, 143})},
      {"doc_or_prefix50_and_window128",
       flex_program({{M::kDocument, 0}, {M::kPrefixLm, 50}, {M::kOr, 0}, {M::kSlidingWindow, 128}, {M::kAnd, 0}},
                    {100, 57, 143})},
      {"prefix80_or_chunk32", flex_program({{M::kPrefixLm, 80}, {M::kChunked, 32}, {M::kOr, 0}})},
  };
  return all;
}

// Score mods the cases use (index 0: none).
struct NamedScore {
  const char* name;
  ScoreMod mod;
};

ScoreMod score_program(std::initializer_list<ScoreMod::Op> ops, float softcap = 0.f) {
  ScoreMod m;
  for (ScoreMod::Op op : ops) m.ops[m.count++] = op;
  m.softcap = softcap;
  return m;
}

const std::vector<NamedScore>& score_mods() {
  using S = ScoreMod;
  static const std::vector<NamedScore> all = {
      {"", {}},
      {"softcap2", score_program({S::kSoftcap}, 2.f)},  // scores are O(2): the cap bites
      {"alibi", score_program({S::kAlibi})},
      {"softcap3_alibi", score_program({S::kSoftcap, S::kAlibi}, 3.f)},
      {"alibi_softcap5", score_program({S::kAlibi, S::kSoftcap}, 5.f)},
  };
  return all;
}

struct Case {
  int64_t heads, kv_heads, head_dim, length, queries, window;
  int splits;
  int64_t block_size = 0;              // > 0: paged
  std::vector<int64_t> batch = {};     // not empty: batched decode of sequences of these lengths
  int flex = 0;                        // flex_masks() index
  int64_t spare = 0;                   // cache positions past length, NaN (GpuAttentionCase::spare_capacity)
  int score = 0;                       // score_mods() index
  float scale = 0;                     // 0: 1 / sqrt(head_dim)
  int64_t min_chunk = 0;               // AttentionParams::min_chunk
  std::string name() const {
    std::string n = "h" + std::to_string(heads) + "_kv" + std::to_string(kv_heads) + "_d" + std::to_string(head_dim);
    if (batch.empty()) {
      n += "_len" + std::to_string(length) + "_q" + std::to_string(queries);
    } else {
      n += "_batch";
      for (int64_t l : batch) n.append("_").append(std::to_string(l));  // (not "_" + string: a GCC 12 -Wrestrict false positive)
    }
    n += "_win" + std::to_string(window) + "_split" + std::to_string(splits);
    if (block_size > 0) n += "_paged" + std::to_string(block_size);
    if (flex > 0) n += std::string("_flex_") + flex_masks()[size_t(flex)].name;
    if (spare > 0) n += "_spare" + std::to_string(spare);
    if (score > 0) n += std::string("_score_") + score_mods()[size_t(score)].name;
    if (scale > 0) n += "_scale" + std::to_string(int(scale * 1000)) + "milli";
    if (min_chunk > 0) n += "_minchunk" + std::to_string(min_chunk);
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
  // At least 32 keys per chunk, the engine's decode: most of 64 or 256 splits empty, 5 keys in one.
  for (Case k : {Case{8, 2, 128, 200, 1, 0, 64}, Case{8, 2, 64, 5, 1, 0, 256}, Case{32, 32, 128, 256, 1, 0, 64},
                 Case{8, 2, 128, 1000, 1, 37, 64}, Case{4, 4, 80, 300, 1, 0, 17}}) {
    k.min_chunk = 32;
    out.push_back(k);
  }
  out.push_back({4, 2, 128, 96, 32, 0, 4});     // several queries, split
  out.push_back({4, 2, 128, 257, 40, 50, 0});   // prefill in a window
  out.push_back({32, 32, 128, 4096, 1, 0, 0});  // Llama-2-7B's decode shape at 4k
  // Prefill shapes for the tiled kernel: one row past a tile, several tiles with a ragged end, a
  // chunk after cached tokens (length > queries, unaligned to the tiles), windows shorter than a
  // tile and spanning several, GQA 4:1 and 8:1, a long prompt.
  for (int64_t hd : {64, 128}) {
    out.push_back({4, 4, hd, 65, 65, 0, 0});
    out.push_back({4, 2, hd, 1000, 300, 0, 0});
    out.push_back({8, 1, hd, 777, 333, 100, 0});
    out.push_back({4, 1, hd, 300, 300, 16, 0});
    out.push_back({2, 2, hd, 520, 200, 130, 0});
    out.push_back({4, 4, hd, 64, 2, 0, 0});
    out.push_back({8, 2, hd, 1500, 1500, 0, 0});
  }
  // Paged: every block size the issue names (and the extremes), decode, prefill, windows.
  for (int64_t bs : {1, 8, 16, 32, 64, 128, 256}) {
    out.push_back({8, 2, 128, 1000, 1, 0, 0, bs});
    out.push_back({4, 1, 80, 1000, 1, 37, 0, bs});  // the generic kernel in a window
  }
  out.push_back({4, 4, 64, 300, 300, 0, 0, 16});    // paged prefill
  out.push_back({4, 2, 256, 257, 40, 50, 0, 8});    // paged prefill in a window
  // Paged prefill for the flash kernels too: block sizes 8, 16 and 128 (a 64-key tile spans 8, 4 or
  // part of one block; blocks in shuffled pool order), a whole ragged prompt, chunks after cached
  // keys (GQA 4:1 and 8:1, windows cutting tiles), one row past a tile, flex masks (prefix_lm rows
  // that see later keys, documents after cached keys).
  for (int64_t hd : {64, 128})
    for (int64_t bs : {8, 16, 128}) {
      out.push_back({4, 2, hd, 300, 300, 0, 0, bs});
      out.push_back({4, 1, hd, 1000, 333, 0, 0, bs});
      out.push_back({8, 1, hd, 777, 333, 100, 0, bs});
      out.push_back({2, 2, hd, 520, 200, 130, 0, bs});
      out.push_back({4, 4, hd, 65, 65, 0, 0, bs});
      out.push_back({4, 2, hd, 300, 300, 0, 0, bs, {}, 3});
      out.push_back({4, 1, hd, 777, 333, 0, 0, bs, {}, 5});
    }
  // Batched decode of mixed lengths (1, a partial block, several chunks), contiguous and paged.
  const std::vector<int64_t> mixed = {1, 17, 300, 1000, 64, 129};
  for (int64_t bs : {0, 8, 16, 128}) {
    out.push_back({8, 2, 128, 0, 1, 0, 0, bs, mixed});
    out.push_back({4, 4, 64, 0, 1, 0, 7, bs, mixed});
    out.push_back({4, 1, 48, 0, 1, 37, 0, bs, mixed});
  }
  out.push_back({32, 8, 128, 0, 1, 0, 0, 16, {4096, 2048, 1000, 333}});
  // Flex masks: every one on a whole prompt (prefix_lm rows see later keys), some on a chunk after
  // cached tokens and in decode, one with the model's window too, paged and batched decode.
  for (int64_t hd : {64, 128}) {
    for (int f = 1; f < int(flex_masks().size()); ++f) out.push_back({4, 2, hd, 300, 300, 0, 0, 0, {}, f});
    for (int f : {3, 5, 6}) out.push_back({4, 1, hd, 777, 333, 0, 0, 0, {}, f});
    for (int f : {3, 4, 5, 6}) out.push_back({8, 2, hd, 1000, 1, 0, 0, 0, {}, f});
    out.push_back({4, 2, hd, 300, 300, 37, 0, 0, {}, 3});
  }
  out.push_back({4, 2, 80, 300, 300, 0, 0, 0, {}, 6});
  out.push_back({8, 2, 128, 1000, 1, 0, 0, 16, {}, 5});
  out.push_back({8, 2, 128, 0, 1, 0, 0, 16, mixed, 4});
  return out;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name(); }

class GpuAttention : public ::testing::TestWithParam<Case> {};

struct Variant {
  const char* name;
  bool vectorized;
  AttentionKernel kernel;
  int flash_rows = 0, flash_warps = 0;
  int prefetch = -1;      // split-KV wide kernel: -1 auto, 0 off, 1 on
  int tensor_cores = -1;  // split-KV head_dim 64/128 on tensor cores: -1 auto (GQA), 0 off, 1 on
  bool pingpong = true;   // TMA kernel: consumer warpgroups take turns (FlashConfig::pingpong)
};

// Runs the case through each variant against the float64 reference; a variant the GPU cannot run
// (Unsupported: wgmma off Hopper) skips the test.
void check_variants(const Case& k, const std::vector<Variant>& variants) {
  GpuAttentionCase c;
  c.heads = k.heads, c.kv_heads = k.kv_heads, c.head_dim = k.head_dim, c.length = k.length, c.queries = k.queries;
  c.window = k.window, c.splits = k.splits, c.block_size = k.block_size, c.batch_lengths = k.batch;
  c.flex = flex_masks()[size_t(k.flex)].mask;
  c.spare_capacity = k.spare;
  c.score_mod = score_mods()[size_t(k.score)].mod;
  c.scale = k.scale;
  c.min_chunk = k.min_chunk;
  const auto [q, kk, v] = attention_ref::random_inputs(c, uint32_t(std::hash<std::string>()(k.name())));
  std::vector<double> spread;
  const auto want = reference_attention(c, q, kk, v, &spread);
  for (const Variant& var : variants) {
    c.vectorized = var.vectorized, c.kernel = var.kernel, c.flash_rows = var.flash_rows, c.flash_warps = var.flash_warps;
    c.prefetch = var.prefetch, c.flash_pingpong = var.pingpong, c.tensor_cores = var.tensor_cores;
    std::vector<float> got;
    try {
      got = gpu_attention(c, q, kk, v);
    } catch (const Unsupported& e) {
      GTEST_SKIP() << e.what();
    }
    ASSERT_EQ(got.size(), want.size());
    // The flash kernels round the softmax weights to bf16 before P V (the spread term).
    const auto d = compare_to_reference(got, want, var.kernel != AttentionKernel::kSplitKv ? &spread : nullptr);
    std::printf("%s %s: max |gpu - ref| / max|ref| = %.3g\n", k.name().c_str(), var.name, d.worst);
    EXPECT_EQ(d.bad, 0u) << k.name() << " " << var.name << ": worst " << d.worst;
  }
}

// The tensor-core prefill kernels take head_dim 64/128 in one sequence, contiguous or paged (paged
// without a score mod, as the split-KV kernel).
bool flash_applies(const Case& k) {
  return (k.head_dim == 64 || k.head_dim == 128) && k.batch.empty() && (k.block_size == 0 || k.score == 0);
}

// The split-KV kernel vectorised and generic, then the mma.sync flash kernel where it applies.
TEST_P(GpuAttention, MatchesTheFloat64Reference) {
  const Case& k = GetParam();
  // The wide kernel as the engine runs it (tensor cores for GQA heads at head_dim 64/128), on CUDA
  // cores only (prefetching a warp's next keys for one head per block), on tensor cores for every
  // head grouping, and the generic kernel.
  std::vector<Variant> variants = {{"vectorised", true, AttentionKernel::kSplitKv, 0, 0, 0},
                                   {"cuda-cores", true, AttentionKernel::kSplitKv, 0, 0, -1, 0},
                                   {"tensor-cores", true, AttentionKernel::kSplitKv, 0, 0, 0, 1},
                                   {"generic", false, AttentionKernel::kSplitKv}};
  if (flash_applies(k)) {  // every block shape
    variants.push_back({"flash64x4", true, AttentionKernel::kFlash, 64, 4});
    variants.push_back({"flash128x4", true, AttentionKernel::kFlash, 128, 4});
    variants.push_back({"flash128x8", true, AttentionKernel::kFlash, 128, 8});
  }
  check_variants(k, variants);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuAttention, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name(); });

// The wgmma flash kernels (Hopper only; skipped elsewhere), the plain one in both block shapes and
// the TMA + warp-specialised one (with and without the consumers' ping-pong), on every case the flash kernels take and on caches with NaN past
// their last entry (the TMA kernel's 128-key tiles then end in garbage the engine's cache would hold):
// a suite of its own, so that it can run apart from the rest.
class GpuAttentionWgmma : public ::testing::TestWithParam<Case> {};

TEST_P(GpuAttentionWgmma, MatchesTheFloat64Reference) {
  check_variants(GetParam(), {{"wgmma64x4", true, AttentionKernel::kFlashWgmma, 64, 4},
                              {"wgmma128x8", true, AttentionKernel::kFlashWgmma, 128, 8},
                              {"tma128x12", true, AttentionKernel::kFlashTma, 128, 12},
                              {"tma128x12_no_pingpong", true, AttentionKernel::kFlashTma, 128, 12, -1, -1, false}});
}

std::vector<Case> flash_cases() {
  std::vector<Case> out;
  for (const Case& k : cases())
    if (flash_applies(k)) out.push_back(k);
  // Spare cache positions (NaN) past the last key: whole prompts, a chunk after cached tokens, a
  // window, GQA, flex prefix_lm (rows that see later keys), one more than a tile.
  for (int64_t hd : {64, 128}) {
    out.push_back({4, 2, hd, 300, 300, 0, 0, 0, {}, 0, 200});
    out.push_back({4, 1, hd, 1000, 333, 0, 0, 0, {}, 0, 77});
    out.push_back({8, 1, hd, 777, 333, 100, 0, 0, {}, 0, 50});
    out.push_back({4, 2, hd, 300, 300, 0, 0, 0, {}, 3, 100});
    out.push_back({2, 2, hd, 129, 129, 0, 0, 0, {}, 0, 1});
    out.push_back({4, 4, hd, 1301, 1301, 0, 0, 0, {}, 0, 3});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuAttentionWgmma, ::testing::ValuesIn(flash_cases()),
                         [](const auto& info) { return info.param.name(); });

// Score mods: every mod on prompts (flash) and decode (split-KV), GQA 4:1 and 2:1 and MHA, head dims
// of the wide (64, 128, 256) and generic (80) kernels, a chunk after cached tokens in a window, flex
// masks under the mods, batched decode of mixed lengths.
std::vector<Case> score_mod_cases() {
  std::vector<Case> out;
  const std::vector<int64_t> mixed = {1, 17, 300, 1000, 64, 129};
  for (int s = 1; s < int(score_mods().size()); ++s) {
    for (int64_t hd : {64, 128, 80}) {
      out.push_back({4, 2, hd, 300, 300, 0, 0, 0, {}, 0, 0, s});
      out.push_back({8, 2, hd, 1000, 1, 0, 0, 0, {}, 0, 0, s});
    }
    out.push_back({4, 4, 256, 1000, 1, 0, 0, 0, {}, 0, 0, s});
    out.push_back({8, 1, 128, 777, 333, 100, 0, 0, {}, 0, 0, s});
    out.push_back({4, 2, 64, 300, 300, 0, 0, 0, {}, 5, 0, s});   // documents
    out.push_back({8, 2, 128, 1000, 1, 0, 0, 0, {}, 3, 0, s});   // prefix_lm, decode
    out.push_back({6, 2, 128, 520, 200, 0, 0, 0, {}, 6, 0, s});  // 6 heads: ALiBi's non-power-of-two slopes
    out.push_back({8, 2, 128, 0, 1, 0, 0, 0, mixed, 0, 0, s});   // batched decode, contiguous
  }
  return out;
}

class GpuAttentionScoreMod : public ::testing::TestWithParam<Case> {};

TEST_P(GpuAttentionScoreMod, MatchesTheFloat64Reference) {
  const Case& k = GetParam();
  std::vector<Variant> variants = {{"vectorised", true, AttentionKernel::kSplitKv, 0, 0, 0},
                                   {"generic", false, AttentionKernel::kSplitKv}};
  if (flash_applies(k)) {
    variants.push_back({"flash64x4", true, AttentionKernel::kFlash, 64, 4});
    variants.push_back({"flash128x4", true, AttentionKernel::kFlash, 128, 4});
    variants.push_back({"flash128x8", true, AttentionKernel::kFlash, 128, 8});
  }
  check_variants(k, variants);
}

INSTANTIATE_TEST_SUITE_P(ScoreMods, GpuAttentionScoreMod, ::testing::ValuesIn(score_mod_cases()),
                         [](const auto& info) { return info.param.name(); });

std::vector<Case> flash_score_mod_cases() {
  std::vector<Case> out;
  for (const Case& k : score_mod_cases())
    if (flash_applies(k)) out.push_back(k);
  return out;
}

INSTANTIATE_TEST_SUITE_P(ScoreMods, GpuAttentionWgmma, ::testing::ValuesIn(flash_score_mod_cases()),
                         [](const auto& info) { return info.param.name(); });

// The CPU backends' conformance cases (tests/plugins/attention_conformance_test.cc), each sequence
// of a batch as a case of its own (eager runs one sequence; the paged block sizes do not apply).
std::vector<Case> cpu_conformance_cases() {
  struct Cpu {
    int64_t head_dim, ratio, kv_heads;
    std::vector<std::pair<int64_t, int64_t>> seqs;  // (length, new rows)
    int64_t window;
    float scale;
  };
  const std::vector<Cpu> cpu = {
      {64, 1, 2, {{1, 1}}, 0, 0},
      {80, 4, 2, {{7, 7}}, 0, 0},
      {128, 8, 1, {{64, 64}}, 0, 0},
      {64, 4, 2, {{257, 257}}, 0, 0},
      {80, 8, 1, {{257, 257}}, 0, 0},
      {128, 4, 2, {{1024, 1024}}, 0, 0},
      {128, 1, 4, {{1024, 1}}, 0, 0},
      {80, 8, 2, {{1024, 1}}, 0, 0},
      {64, 4, 2, {{257, 1}}, 0, 0},
      {128, 8, 1, {{7, 1}}, 0, 0},
      {64, 4, 2, {{257, 64}}, 0, 0},
      {128, 8, 1, {{1024, 7}}, 0, 0},
      {80, 1, 3, {{64, 7}}, 0, 0},
      {64, 1, 2, {{64, 64}}, 1, 0},
      {128, 4, 2, {{257, 1}}, 1, 0},
      {80, 4, 1, {{257, 257}}, 16, 0},
      {64, 8, 1, {{1024, 1}}, 16, 0},
      {128, 1, 2, {{257, 37}}, 16, 0},
      {128, 8, 1, {{64, 64}}, 1000, 0},
      {80, 1, 2, {{7, 1}}, 8, 0},
      {128, 4, 2, {{257, 257}}, 0, 0.03f},
      {64, 1, 4, {{1024, 1}}, 0, 0.03f},
      {128, 4, 2, {{64, 64}}, 0, 1.0f},
      {80, 8, 1, {{257, 1}}, 0, 1.0f},
      {64, 4, 2, {{1, 1}, {7, 7}, {64, 64}, {257, 257}}, 0, 0},
      {128, 8, 1, {{1024, 1}, {257, 64}, {7, 7}, {1, 1}}, 0, 0},
      {80, 1, 2, {{64, 1}, {257, 16}, {7, 7}, {1024, 1}}, 16, 0},
      {64, 8, 1, {{257, 1}, {1024, 1}, {1, 1}, {64, 1}}, 0, 0.03f},
  };
  std::vector<Case> out;
  for (const Cpu& c : cpu)
    for (auto [length, n_new] : c.seqs) {
      Case k{c.ratio * c.kv_heads, c.kv_heads, c.head_dim, length, n_new, c.window, 0};
      k.scale = c.scale;
      const std::string name = k.name();
      if (std::none_of(out.begin(), out.end(), [&](const Case& o) { return o.name() == name; })) out.push_back(k);
    }
  return out;
}

// Eager attention: every one-sequence contiguous case above (flex masks and score mods included) and
// every CPU conformance case.
std::vector<Case> eager_cases() {
  std::vector<Case> out;
  auto add = [&](const std::vector<Case>& from) {
    for (const Case& k : from) {
      const std::string name = k.name();
      if (k.block_size == 0 && k.batch.empty() &&
          std::none_of(out.begin(), out.end(), [&](const Case& o) { return o.name() == name; }))
        out.push_back(k);
    }
  };
  add(cases());
  add(score_mod_cases());
  add(cpu_conformance_cases());
  return out;
}

class GpuAttentionEager : public ::testing::TestWithParam<Case> {};

TEST_P(GpuAttentionEager, MatchesTheFloat64Reference) {
  check_variants(GetParam(), {{"eager", true, AttentionKernel::kEager}});
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuAttentionEager, ::testing::ValuesIn(eager_cases()),
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
  c.batch_lengths.clear(), c.block_size = 0, c.head_dim = 80, c.kernel = AttentionKernel::kFlash;
  try {
    gpu_attention(c, std::vector<float>(4 * 80), std::vector<float>(8 * 4 * 80), std::vector<float>(8 * 4 * 80));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 64 or 128"), std::string::npos) << e.what();
  }
  c.head_dim = 64, c.block_size = 16, c.batch_lengths = {8, 8};  // paged is fine, batched decode is not
  try {
    gpu_attention(c, std::vector<float>(2 * 4 * 64), std::vector<float>(16 * 4 * 64), std::vector<float>(16 * 4 * 64));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("flash kernel reads one bf16 sequence"), std::string::npos) << e.what();
  }
  c.batch_lengths.clear(), c.block_size = 0;
  c.head_dim = 64, c.kernel = AttentionKernel::kEager, c.block_size = 16;
  try {
    gpu_attention(c, std::vector<float>(4 * 64), kv, kv);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eager kernel reads one contiguous"), std::string::npos) << e.what();
  }
  c.kernel = AttentionKernel::kSplitKv, c.score_mod = score_mods()[2].mod;
  try {
    gpu_attention(c, std::vector<float>(4 * 64), kv, kv);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("score mods run over a contiguous"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ctx::cuda
