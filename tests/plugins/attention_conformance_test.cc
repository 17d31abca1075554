// Conformance of every registered attention backend against the numerical reference
// `eager:precision=double`, on the same keys/values: the backend reads a cache in its own layout
// (a paged cache from a BlockPool of its block size, filled through key_slot/value_slot), the
// reference a contiguous cache with identical contents. A newly registered backend is covered
// automatically (test::attention_names()); `eager` itself runs in float. Each backend runs with its
// default parameters (flex's named masks and score mods have their own test).
//
// Tolerance (float32 backends vs the float64 reference), per case:
//   max |out - ref| <= 2e-5 * max(1, max |ref|)
// Outputs are convex combinations of values drawn from N(0, 1), so |ref| is O(1) and the bound is
// a few hundred float32 ulps, well above the rounding of a 1024-term online softmax and far below
// any masking, GQA-grouping, scaling or block-table mistake (those give O(0.1) errors).
//
// Coverage: not the cartesian product of every dimension, but a covering set of cases (kCases) in
// which every value of every dimension appears at least once, most of them more than once and in
// different combinations:
//   head_dim {64, 80, 128} x GQA ratio {1, 4, 8} (MQA included) x length {1, 7, 64, 257, 1024},
//   prefill (all rows new), decode (1 new row over a long past), chunked prefill (n_new < length),
//   batches of unequal lengths mixing the three in one forward() call, sliding windows
//   {1, 16, > length}, scale 1/sqrt(d) vs Granite-like 0.03 vs a sharp 1.0, and paged block sizes
//   {1, 8, 16, 128} (used by backends whose layout is paged: spec `NAME:block_size=N`).
// Length 1024 appears in prefill only once (the O(T^2 d) float64 reference), otherwise in decode or
// short chunks; each case's reference is computed once and shared by all backends. With the five
// built-in backends the suite (28 cases x 5 backends) runs in about 5 s in Release on 2 cores.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "core/model/block_pool.h"
#include "core/model/kv_cache.h"
#include "plugins/register_all.h"
#include "tests/support/attention.h"

namespace ctx {
namespace {

constexpr double kRelTolerance = 2e-5;
constexpr int64_t kLayers = 2;  // caches hold two layers; cases alternate which one is read

struct Seq {
  int64_t length;  // keys in the cache, new rows included
  int64_t n_new;   // query rows: == length prefill, 1 decode, in between chunked prefill
};

struct Case {
  const char* name;
  int64_t head_dim, ratio, kv_heads;
  std::vector<Seq> seqs;
  int64_t window = 0;
  double scale = 0;  // 0: 1/sqrt(head_dim)
  int64_t block_size = 16;  // paged backends only
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      // Prefill, one sequence, each length.
      {"prefill_len1_d64_mha", 64, 1, 2, {{1, 1}}, 0, 0, 16},
      {"prefill_len7_d80_gqa4", 80, 4, 2, {{7, 7}}, 0, 0, 1},
      {"prefill_len64_d128_mqa8", 128, 8, 1, {{64, 64}}, 0, 0, 8},
      {"prefill_len257_d64_gqa4", 64, 4, 2, {{257, 257}}, 0, 0, 16},
      {"prefill_len257_d80_gqa8_bs128", 80, 8, 1, {{257, 257}}, 0, 0, 128},
      {"prefill_len1024_d128_gqa4", 128, 4, 2, {{1024, 1024}}, 0, 0, 128},
      // Decode: one new row over a long past.
      {"decode_len1024_d128_mha", 128, 1, 4, {{1024, 1}}, 0, 0, 16},
      {"decode_len1024_d80_gqa8_bs1", 80, 8, 2, {{1024, 1}}, 0, 0, 1},
      {"decode_len257_d64_gqa4_bs8", 64, 4, 2, {{257, 1}}, 0, 0, 8},
      {"decode_len7_d128_gqa8", 128, 8, 1, {{7, 1}}, 0, 0, 8},
      // Chunked prefill: n_new < length (rows start mid-sequence, mid-block).
      {"chunked_len257_new64_d64_gqa4", 64, 4, 2, {{257, 64}}, 0, 0, 16},
      {"chunked_len1024_new7_d128_gqa8_bs1", 128, 8, 1, {{1024, 7}}, 0, 0, 1},
      {"chunked_len64_new7_d80_mha_bs128", 80, 1, 3, {{64, 7}}, 0, 0, 128},
      // Sliding windows: 1 (only itself), 16 (< length), larger than the length (== no window).
      {"window1_prefill_len64_d64_mha", 64, 1, 2, {{64, 64}}, 1, 0, 8},
      {"window1_decode_len257_d128_gqa4", 128, 4, 2, {{257, 1}}, 1, 0, 1},
      {"window16_prefill_len257_d80_gqa4", 80, 4, 1, {{257, 257}}, 16, 0, 16},
      {"window16_decode_len1024_d64_gqa8_bs8", 64, 8, 1, {{1024, 1}}, 16, 0, 8},
      {"window16_chunked_len257_new37_d128_mha", 128, 1, 2, {{257, 37}}, 16, 0, 128},
      {"window_gt_len_prefill_len64_d128_gqa8", 128, 8, 1, {{64, 64}}, 1000, 0, 128},
      {"window_gt_len_decode_len7_d80_mha", 80, 1, 2, {{7, 1}}, 8, 0, 1},
      // Scale: Granite-like attention multiplier, and a sharp softmax (scores of std ~ sqrt(d)).
      {"granite_scale_prefill_len257_d128_gqa4", 128, 4, 2, {{257, 257}}, 0, 0.03, 16},
      {"granite_scale_decode_len1024_d64_mha", 64, 1, 4, {{1024, 1}}, 0, 0.03, 8},
      {"sharp_scale1_prefill_len64_d128_gqa4", 128, 4, 2, {{64, 64}}, 0, 1.0, 16},
      {"sharp_scale1_decode_len257_d80_gqa8", 80, 8, 1, {{257, 1}}, 0, 1.0, 1},
      // Batches of unequal lengths in one forward() call.
      {"batch_prefill_1_7_64_257_d64_gqa4", 64, 4, 2, {{1, 1}, {7, 7}, {64, 64}, {257, 257}}, 0, 0, 16},
      {"batch_mixed_decode_chunk_prefill_d128_gqa8", 128, 8, 1, {{1024, 1}, {257, 64}, {7, 7}, {1, 1}}, 0, 0, 8},
      {"batch_mixed_window16_d80_mha_bs1", 80, 1, 2, {{64, 1}, {257, 16}, {7, 7}, {1024, 1}}, 16, 0, 1},
      {"batch_decode_granite_d64_gqa8_bs128", 64, 8, 1, {{257, 1}, {1024, 1}, {1, 1}, {64, 1}}, 0, 0.03, 128},
  };
  return all;
}

// Worst relative error per backend over all its cases, printed at the end of the run.
struct Worst {
  double rel = 0, abs = 0;
  std::string where;
};
std::map<std::string, Worst>& worst_by_backend() {
  static std::map<std::string, Worst> w;
  return w;
}

class WorstCaseReport : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf("\nattention conformance: worst max|diff| / max(1, max|ref|) per backend (tolerance %.0e)\n",
                kRelTolerance);
    for (const auto& [name, w] : worst_by_backend())
      std::printf("  %-8s %.3e (abs %.3e) in %s\n", name.c_str(), w.rel, w.abs, w.where.c_str());
  }
};
[[maybe_unused]] ::testing::Environment* const kReport = ::testing::AddGlobalTestEnvironment(new WorstCaseReport);

// The spec a backend is tested with: eager in float (the reference is eager in double), a paged
// backend with the case's block size, everything else with its defaults.
std::string spec_for(const std::string& name, const Case& c) {
  if (name == "eager") return "eager:precision=float";
  const PluginInfo& info = builtin_catalog().attention.get(name);
  const bool has_block_size =
      std::any_of(info.schema.begin(), info.schema.end(), [](const ParamSpec& s) { return s.name == "block_size"; });
  if (has_block_size && test::attention(name)->layout() == KvLayout::kPaged)
    return name + ":block_size=" + std::to_string(c.block_size);
  return name;
}

ModelConfig kv_config(const Case& c) {
  ModelConfig m;
  m.num_layers = kLayers;
  m.num_kv_heads = c.kv_heads;
  m.head_dim = c.head_dim;
  return m;
}

// Random keys/values of every sequence and layer, written into a cache of either layout.
struct KvData {
  std::vector<std::vector<float>> k, v;  // [seq][layer][head][pos][d]
};

void fill(KvCache& cache, const std::vector<float>& k, const std::vector<float>& v, int64_t length, int64_t kv_heads,
          int64_t hd, int64_t from, int64_t to) {
  for (int64_t l = 0; l < kLayers; ++l)
    for (int64_t g = 0; g < kv_heads; ++g)
      for (int64_t t = from; t < to; ++t) {
        const size_t o = size_t(((l * kv_heads + g) * length + t) * hd);
        std::copy_n(k.data() + o, hd, cache.key_slot(l, g, t));
        std::copy_n(v.data() + o, hd, cache.value_slot(l, g, t));
      }
}

// Caches for every sequence of the case. Paged caches grow in turn, a block at a time, as the
// sequences of a batch do, so that block tables interleave and are not the identity.
std::vector<KvCache> build_caches(const Case& c, const KvData& data, std::shared_ptr<BlockPool> pool) {
  std::vector<KvCache> caches;
  for (size_t s = 0; s < c.seqs.size(); ++s)
    caches.push_back(pool ? KvCache(kv_config(c), pool) : KvCache(kv_config(c)));
  const int64_t step = pool ? pool->block_size() : std::numeric_limits<int64_t>::max() / 2;
  for (bool more = true; more;) {
    more = false;
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      KvCache& cache = caches[s];
      const int64_t len = c.seqs[s].length, from = cache.position();
      if (from >= len) continue;
      const int64_t to = std::min(len, from + step);
      cache.reserve(to);
      fill(cache, data.k[s], data.v[s], len, c.kv_heads, c.head_dim, from, to);
      cache.set_length(to);
      more = more || to < len;
    }
  }
  return caches;
}

struct Outputs {
  std::vector<std::vector<float>> out;  // per sequence, [n_new, num_heads * head_dim] + guard
};

constexpr int64_t kGuard = 64;       // floats after each output, must stay untouched
constexpr float kGuardValue = 12345.0f;

Outputs run(const AttentionBackend& backend, const AttentionParams& p, const Case& c, int64_t layer,
            const std::vector<std::vector<float>>& q, const std::vector<KvCache>& caches) {
  Outputs o;
  std::vector<AttentionSequence> batch;
  const int64_t row = p.num_heads * p.head_dim;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    // NaN everywhere: a row the backend does not write fails the comparison.
    o.out.emplace_back(size_t(c.seqs[s].n_new * row), std::numeric_limits<float>::quiet_NaN());
    o.out.back().resize(o.out.back().size() + kGuard, kGuardValue);
  }
  for (size_t s = 0; s < c.seqs.size(); ++s)
    batch.push_back({q[s].data(), c.seqs[s].n_new, caches[s].view(layer), o.out[s].data(), int64_t(s)});
  backend.forward(p, batch);
  return o;
}

class AttentionConformance : public ::testing::TestWithParam<std::tuple<std::string, size_t>> {};

TEST_P(AttentionConformance, MatchesEagerDouble) {
  const std::string& name = std::get<0>(GetParam());
  const Case& c = cases()[std::get<1>(GetParam())];
  const std::string spec = spec_for(name, c);
  SCOPED_TRACE("backend " + spec + ", case " + c.name);
  const auto backend = test::attention(spec);
  static const auto reference = test::attention("eager:precision=double");

  AttentionParams p;
  p.num_kv_heads = c.kv_heads;
  p.num_heads = c.ratio * c.kv_heads;
  p.head_dim = c.head_dim;
  p.scale = c.scale > 0 ? float(c.scale) : float(1.0 / std::sqrt(double(c.head_dim)));
  p.window = c.window;
  const Support support = backend->supports(p, backend->layout());
  // A conformance shape a CPU backend cannot run is a gap in that backend, not a reason to skip.
  ASSERT_TRUE(support.ok) << spec << " reports unsupported: " << support.reason;

  std::mt19937 rng(uint32_t(std::get<1>(GetParam()) * 7919 + 17));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  KvData data;
  std::vector<std::vector<float>> q;
  for (const Seq& s : c.seqs) {
    ASSERT_LE(s.n_new, s.length);
    const size_t kv_n = size_t(kLayers * c.kv_heads * s.length * c.head_dim);
    data.k.emplace_back(kv_n), data.v.emplace_back(kv_n);
    for (auto* buf : {&data.k.back(), &data.v.back()})
      for (float& x : *buf) x = normal(rng);
    q.emplace_back(size_t(s.n_new * p.num_heads * p.head_dim));
    for (float& x : q.back()) x = normal(rng);
  }

  std::shared_ptr<BlockPool> pool;
  if (backend->layout() == KvLayout::kPaged) {
    ASSERT_GT(backend->block_size(), 0);
    pool = std::make_shared<BlockPool>(kv_config(c), backend->block_size());
  }
  const std::vector<KvCache> caches = build_caches(c, data, pool);
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    ASSERT_EQ(caches[s].layout(), backend->layout());
    if (pool) {
      ASSERT_EQ(int64_t(caches[s].block_table().size()), (c.seqs[s].length + pool->block_size() - 1) / pool->block_size());
    }
  }

  const int64_t layer = int64_t(std::get<1>(GetParam()) % kLayers);
  const Outputs got = run(*backend, p, c, layer, q, caches);
  // The reference of a case is computed once and shared by every backend (the inputs are a pure
  // function of the case index): the float64 O(T^2 d) reference dominates the suite's run time.
  static std::map<size_t, Outputs> reference_outputs;
  auto it = reference_outputs.find(std::get<1>(GetParam()));
  if (it == reference_outputs.end())
    it = reference_outputs.emplace(std::get<1>(GetParam()), run(*reference, p, c, layer, q, build_caches(c, data, nullptr))).first;
  const Outputs& want = it->second;

  double max_diff = 0, max_ref = 0;
  std::string worst_at = "-";
  const int64_t row = p.num_heads * p.head_dim;
  for (size_t s = 0; s < c.seqs.size(); ++s) {
    const int64_t n = c.seqs[s].n_new * row;
    for (int64_t i = 0; i < n; ++i) {
      const double a = got.out[s][size_t(i)], b = want.out[s][size_t(i)];
      ASSERT_FALSE(std::isnan(b)) << "reference left a NaN";
      max_ref = std::max(max_ref, std::abs(b));
      const double d = std::isnan(a) ? std::numeric_limits<double>::infinity() : std::abs(a - b);
      if (d > max_diff) {
        max_diff = d;
        std::ostringstream at;
        at << "seq " << s << " row " << i / row << " (position " << c.seqs[s].length - c.seqs[s].n_new + i / row
           << ") head " << (i % row) / p.head_dim << " d " << i % p.head_dim << ": " << a << " vs " << b;
        worst_at = at.str();
      }
    }
    for (int64_t i = n; i < n + kGuard; ++i)
      ASSERT_EQ(got.out[s][size_t(i)], kGuardValue) << "wrote past the output of sequence " << s;
  }
  const double rel = max_diff / std::max(1.0, max_ref);
  EXPECT_LE(rel, kRelTolerance) << "max |diff| " << max_diff << " with max |ref| " << max_ref << " at " << worst_at;

  Worst& w = worst_by_backend()[name];
  if (rel >= w.rel) w = {rel, max_diff, std::string(c.name) + " [" + spec + "]"};
}

INSTANTIATE_TEST_SUITE_P(AllBackends, AttentionConformance,
                         ::testing::Combine(::testing::ValuesIn(test::attention_names()),
                                            ::testing::Range(size_t(0), cases().size())),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + cases()[std::get<1>(info.param)].name;
                         });

TEST(AttentionConformanceCoverage, EveryDimensionValueAppears) {
  // Guards the covering design: removing a case must not silently drop a required value.
  std::set<int64_t> dims, ratios, lengths, windows, blocks;
  std::set<double> scales;
  bool prefill = false, decode = false, chunked = false, mixed_batch = false;
  for (const Case& c : cases()) {
    dims.insert(c.head_dim), ratios.insert(c.ratio), blocks.insert(c.block_size), scales.insert(c.scale);
    std::set<int64_t> lens;
    for (const Seq& s : c.seqs) {
      lengths.insert(s.length), lens.insert(s.length);
      prefill |= s.n_new == s.length && s.length > 1;
      decode |= s.n_new == 1 && s.length > 1;
      chunked |= s.n_new > 1 && s.n_new < s.length;
      if (c.window > 0) windows.insert(c.window > s.length ? -1 : c.window);  // -1: window > length
    }
    mixed_batch |= lens.size() > 1;
  }
  for (int64_t d : {64, 80, 128}) EXPECT_TRUE(dims.count(d)) << "head_dim " << d;
  for (int64_t r : {1, 4, 8}) EXPECT_TRUE(ratios.count(r)) << "GQA ratio " << r;
  for (int64_t l : {1, 7, 64, 257, 1024}) EXPECT_TRUE(lengths.count(l)) << "length " << l;
  for (int64_t w : {1, 16, -1}) EXPECT_TRUE(windows.count(w)) << "window " << w;
  for (int64_t b : {1, 8, 16, 128}) EXPECT_TRUE(blocks.count(b)) << "block size " << b;
  EXPECT_TRUE(scales.count(0.0) && scales.count(0.03)) << "1/sqrt(d) and Granite-like scale";
  EXPECT_TRUE(prefill && decode && chunked && mixed_batch);
}

}  // namespace
}  // namespace ctx
