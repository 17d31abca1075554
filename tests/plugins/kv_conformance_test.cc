// Conformance of every registered KV compressor (parameterised over catalog.kv.names(), so a new
// plugin is tested automatically), then policy-specific survivors on hand-built keys and queries:
//   - budgets: keep counts per layer and head for keep_ratio (round half up of ratio * tokens seen)
//     and keep_tokens; skip_layers untouched; prune_after respected; protect_recent survives
//   - compaction: kept rows bit-identical to the originals, in their original order; state scores
//     compacted alike; memory really freed (contiguous capacity, paged blocks back to the pool)
//   - end to end: `none` and keep_ratio=1 leave HF-fixture logits bit-identical; decode over a
//     compressed cache agrees across backends (eager reference vs sdpa/flash/paged); positions keep
//     counting tokens seen; sliding-window models are refused; bad specs give one clear error
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "core/base/error.h"
#include "core/kv/kv_compressor.h"
#include "core/model/block_pool.h"
#include "core/model/kv_cache.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "plugins/register_all.h"
#include "tests/support/attention.h"
#include "tests/support/error_of.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

const Catalog& catalog() { return builtin_catalog(); }

std::shared_ptr<const KvCompressor> kv(const std::string& spec) { return catalog().kv.create(spec); }

ModelConfig tiny_config(int64_t layers = 3) {
  ModelConfig c;
  c.num_layers = layers;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.layer_window.assign(size_t(layers), 0);
  return c;
}

// Random K/V rows (all distinct, so a kept row identifies its original) and queries.
struct Filled {
  std::vector<float> k, v;  // [layer][head][pos][d]
  std::vector<float> q;     // [pos][num_heads * head_dim]
  int64_t at(const ModelConfig& c, int64_t l, int64_t h, int64_t p) const {
    return ((l * c.num_kv_heads + h) * (int64_t(k.size()) / (c.num_layers * c.num_kv_heads * c.head_dim)) + p) *
           c.head_dim;
  }
};

Filled random_rows(const ModelConfig& c, int64_t len, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  Filled f;
  f.k.resize(size_t(c.num_layers * c.num_kv_heads * len * c.head_dim));
  f.v.resize(f.k.size());
  f.q.resize(size_t(len * c.q_dim()));
  for (auto* b : {&f.k, &f.v, &f.q})
    for (float& x : *b) x = nd(rng);
  return f;
}

void write(KvCache& cache, const ModelConfig& c, const Filled& f, int64_t len) {
  cache.reserve(len);
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int64_t h = 0; h < c.num_kv_heads; ++h)
      for (int64_t p = 0; p < len; ++p) {
        std::copy_n(f.k.data() + f.at(c, l, h, p), c.head_dim, cache.key_slot(l, h, p));
        std::copy_n(f.v.data() + f.at(c, l, h, p), c.head_dim, cache.value_slot(l, h, p));
      }
  cache.set_length(len);
}

// One prefill step of `len` rows through the compressor (as Transformer::forward does it): the
// rows are already in the cache, counted by length(l) but not yet by position().
bool prefill_compress(const KvCompressor& comp, const ModelConfig& c, const Filled& f, int64_t len, KvCache& cache) {
  cache.set_length(0);
  for (int64_t l = 0; l < c.num_layers; ++l) cache.append(l, len);
  bool any = false;
  for (int64_t l = 0; l < c.num_layers; ++l) any |= compress_layer(comp, c, l, f.q.data(), len, cache);
  cache.advance(len);
  if (any) cache.trim();
  return any;
}

// The original position of every stored row of (layer, head), found by bitwise comparison of K and V.
std::vector<int64_t> origins(const KvCache& cache, const ModelConfig& c, const Filled& f, int64_t len, int64_t l,
                             int64_t h) {
  std::vector<int64_t> out;
  const KvView v = cache.view(l);
  for (int64_t i = 0; i < v.length; ++i) {
    int64_t found = -1;
    for (int64_t p = 0; p < len && found < 0; ++p)
      if (std::equal(v.key(h, i), v.key(h, i) + c.head_dim, f.k.data() + f.at(c, l, h, p)) &&
          std::equal(v.value(h, i), v.value(h, i) + c.head_dim, f.v.data() + f.at(c, l, h, p)))
        found = p;
    out.push_back(found);
  }
  return out;
}

class KvConformance : public ::testing::TestWithParam<std::string> {
 protected:
  bool is_none() const { return GetParam() == "none"; }
  std::string spec(const std::string& params) const {
    return is_none() || params.empty() ? GetParam() : GetParam() + ":" + params;
  }
};

TEST_P(KvConformance, KeepCountsOrderAndBitIdenticalRows) {
  const ModelConfig c = tiny_config();
  const int64_t len = 37;
  const Filled f = random_rows(c, len);
  for (const std::string& budget : {std::string("keep_ratio=0.3"), std::string("keep_tokens=7")}) {
    KvCache cache(c);
    write(cache, c, f, len);
    const auto comp = kv(spec(budget + ",skip_layers=[1],every=0"));
    prefill_compress(*comp, c, f, len, cache);
    EXPECT_EQ(cache.position(), len);
    const int64_t expect = is_none() ? len : budget == "keep_tokens=7" ? 7 : 11;  // round(0.3 * 37) = 11
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const int64_t want = l == 1 ? len : expect;
      EXPECT_EQ(cache.length(l), want) << budget << " layer " << l;
      for (int64_t h = 0; h < c.num_kv_heads; ++h) {
        const auto o = origins(cache, c, f, len, l, h);
        ASSERT_EQ(int64_t(o.size()), want);
        for (size_t i = 0; i < o.size(); ++i) {
          ASSERT_GE(o[i], 0) << "row " << i << " of layer " << l << " head " << h << " is not an original row";
          if (i > 0) { ASSERT_GT(o[i], o[i - 1]) << "order lost in layer " << l << " head " << h; }
        }
      }
    }
  }
}

TEST_P(KvConformance, PruneAfterAndProtectRecent) {
  const ModelConfig c = tiny_config(2);
  const int64_t len = 40;
  const Filled f = random_rows(c, len, 3);
  {
    KvCache cache(c);
    write(cache, c, f, len);
    EXPECT_FALSE(prefill_compress(*kv(spec("keep_ratio=0.25,skip_layers=[],prune_after=41")), c, f, len, cache));
    EXPECT_EQ(cache.length(0), len);
    EXPECT_EQ(cache.length(1), len);
  }
  KvCache cache(c);
  write(cache, c, f, len);
  prefill_compress(*kv(spec("keep_ratio=0.25,skip_layers=[],prune_after=40,protect_recent=6")), c, f, len, cache);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    EXPECT_EQ(cache.length(l), is_none() ? len : 10);
    for (int64_t h = 0; h < c.num_kv_heads; ++h) {
      const auto o = origins(cache, c, f, len, l, h);
      for (int64_t p = len - 6; p < len; ++p)
        EXPECT_TRUE(std::count(o.begin(), o.end(), p)) << "recent position " << p << " lost in layer " << l;
    }
  }
}

TEST_P(KvConformance, ContiguousMemoryIsReleased) {
  const ModelConfig c = tiny_config(2);
  const int64_t len = 64, entry = 2 * c.num_kv_heads * c.head_dim * 4;
  const Filled f = random_rows(c, len, 5);
  KvCache cache(c);
  write(cache, c, f, len);
  const int64_t before = cache.bytes_reserved();
  EXPECT_EQ(cache.bytes_used(), 2 * len * entry);
  const auto comp = kv(spec("keep_tokens=16,skip_layers=[]"));
  prefill_compress(*comp, c, f, len, cache);
  if (is_none()) {
    EXPECT_EQ(cache.bytes_reserved(), before);
    return;
  }
  EXPECT_EQ(cache.bytes_used(), 2 * 16 * entry);
  EXPECT_EQ(cache.bytes_reserved(), 2 * (16 + comp->headroom()) * entry);
  EXPECT_LT(cache.bytes_reserved(), before);
}

TEST_P(KvConformance, PagedBlocksReturnToThePoolAndSharedBlocksSurvive) {
  const ModelConfig c = tiny_config(2);
  const int64_t len = 64, bs = 8;
  const Filled f = random_rows(c, len, 7);
  auto pool = std::make_shared<BlockPool>(c, bs);
  KvCache parent(c, pool);
  write(parent, c, f, len);
  ASSERT_EQ(pool->blocks_in_use(), 8);
  KvCache child = parent.fork();  // shares every block: compaction must copy, not write through
  prefill_compress(*kv(spec("keep_tokens=20,skip_layers=[]")), c, f, len, child);
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int64_t h = 0; h < c.num_kv_heads; ++h) {
      const auto o = origins(parent, c, f, len, l, h);
      for (int64_t p = 0; p < len; ++p) ASSERT_EQ(o[size_t(p)], p) << "the parent's shared block was modified";
    }
  if (is_none()) {
    EXPECT_EQ(pool->blocks_in_use(), 8);
    return;
  }
  EXPECT_EQ(int64_t(child.block_table().size()), 3);  // ceil(20 / 8)
  EXPECT_EQ(child.bytes_used(), 2 * 20 * 2 * c.num_kv_heads * c.head_dim * 4);
  parent.clear();
  EXPECT_EQ(pool->blocks_in_use(), 3);
  for (int64_t l = 0; l < c.num_layers; ++l)
    for (int64_t h = 0; h < c.num_kv_heads; ++h) {
      const auto o = origins(child, c, f, len, l, h);
      ASSERT_EQ(int64_t(o.size()), 20);
      for (size_t i = 0; i < o.size(); ++i) ASSERT_TRUE(o[i] >= 0 && (i == 0 || o[i] > o[i - 1]));
    }
}

TEST_P(KvConformance, NoCompressionReproducesHfFixtureBitIdentically) {
  auto model = load_model(test::shared_path("fixtures/hf/llama"));
  std::vector<int32_t> prompt;
  for (int32_t t = 0; t < 24; ++t) prompt.push_back(int32_t(3 + (t * 37) % 500));
  auto run = [&](std::shared_ptr<const KvCompressor> comp) {
    Transformer tf(*model, test::attention("sdpa"));
    tf.set_kv_compressor(std::move(comp));
    KvCache cache = tf.new_cache();
    SequenceStep pre{&cache, std::span<const int32_t>(prompt.data(), 16), 0};
    std::vector<float> all = tf.forward({&pre, 1});
    for (size_t t = 16; t < prompt.size(); ++t) {
      SequenceStep s{&cache, std::span<const int32_t>(&prompt[t], 1), -1};
      const auto lg = tf.forward({&s, 1});
      all.insert(all.end(), lg.begin(), lg.end());
    }
    return all;
  };
  const auto ref = run(nullptr);
  const auto got = run(kv(is_none() ? "none" : GetParam() + ":keep_ratio=1"));
  ASSERT_EQ(ref.size(), got.size());
  EXPECT_TRUE(std::equal(ref.begin(), ref.end(), got.begin()));
}

TEST_P(KvConformance, DecodeOverCompressedCacheAgreesAcrossBackends) {
  auto model = load_model(test::shared_path("fixtures/hf/llama"));
  std::vector<int32_t> prompt;
  for (int32_t t = 0; t < 40; ++t) prompt.push_back(int32_t(3 + (t * 53) % 500));
  const auto comp = kv(spec("keep_ratio=0.5,skip_layers=[],every=2"));
  auto run = [&](const std::string& backend, int64_t* kept) {
    Transformer tf(*model, test::attention(backend));
    tf.set_kv_compressor(comp);
    KvCache cache = tf.new_cache();
    SequenceStep pre{&cache, std::span<const int32_t>(prompt.data(), 32), -1};
    std::vector<float> all = tf.forward({&pre, 1});
    *kept = cache.length(0);
    for (size_t t = 32; t < prompt.size(); ++t) {
      SequenceStep s{&cache, std::span<const int32_t>(&prompt[t], 1), -1};
      const auto lg = tf.forward({&s, 1});
      all.insert(all.end(), lg.begin(), lg.end());
    }
    EXPECT_EQ(cache.position(), int64_t(prompt.size()));
    EXPECT_LE(cache.length(1), is_none() ? 40 : 21);  // the budget after decode re-compression
    return all;
  };
  int64_t kept = 0;
  const auto ref = run("eager", &kept);
  EXPECT_EQ(kept, is_none() ? 32 : 16);
  for (const std::string backend : {"sdpa", "flash", "paged:block_size=4"}) {
    int64_t k = 0;
    const auto got = run(backend, &k);
    EXPECT_EQ(k, kept) << backend;
    ASSERT_EQ(got.size(), ref.size());
    EXPECT_LE(test::compare(got.data(), ref.data(), int64_t(ref.size())).relative(), 1e-4) << backend;
  }
}

TEST_P(KvConformance, SlidingWindowModelsAreRefusedUnlessNone) {
  auto model = load_model(test::shared_path("fixtures/hf/mistral_swa"));
  Transformer tf(*model, test::attention("sdpa"));
  if (is_none()) {
    EXPECT_NO_THROW(tf.set_kv_compressor(kv("none")));
    return;
  }
  try {
    tf.set_kv_compressor(kv(GetParam()));
    ADD_FAILURE() << "expected ctx::Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("sliding window"), std::string::npos) << e.what();
  }
}

TEST_P(KvConformance, BadSpecsGiveOneClearError) {
  if (is_none()) {
    EXPECT_THROW(kv("none:keep_ratio=0.5"), Error);
    return;
  }
  const std::string both = test::error_of([&] { kv(GetParam() + ":keep_ratio=0.5,keep_tokens=10"); });
  EXPECT_NE(both.find("both set"), std::string::npos) << both;
  EXPECT_NE(both.find(GetParam()), std::string::npos) << both;
  const std::string range = test::error_of([&] { kv(GetParam() + ":keep_ratio=1.5"); });
  EXPECT_NE(range.find("keep_ratio"), std::string::npos) << range;
  EXPECT_THROW(kv(GetParam() + ":keep_tokens=-1"), Error);
}

INSTANTIATE_TEST_SUITE_P(AllKvPlugins, KvConformance, ::testing::ValuesIn(catalog().kv.names()),
                         [](const auto& info) { return info.param; });

// ---- policies on hand-built cases ----------------------------------------------------------------

// Keys and queries in one layer of one KV head group: len entries, key j = key_of(j) in every head.
struct HandBuilt {
  ModelConfig c = tiny_config(1);
  int64_t len;
  Filled f;
  HandBuilt(int64_t n, const std::function<std::vector<float>(int64_t)>& key_of, const std::vector<float>& query)
      : len(n), f(random_rows(c, n, 11)) {
    for (int64_t h = 0; h < c.num_kv_heads; ++h)
      for (int64_t p = 0; p < n; ++p) std::ranges::copy(key_of(p), f.k.begin() + f.at(c, 0, h, p));
    for (int64_t r = 0; r < n; ++r)
      for (int64_t qh = 0; qh < c.num_heads; ++qh) std::ranges::copy(query, f.q.begin() + (r * c.num_heads + qh) * c.head_dim);
  }
  std::set<int64_t> survivors(const std::string& spec, int64_t head = 0) {
    KvCache cache(c);
    write(cache, c, f, len);
    prefill_compress(*kv(spec), c, f, len, cache);
    const auto o = origins(cache, c, f, len, 0, head);
    return {o.begin(), o.end()};
  }
};

std::vector<float> axis(float a, int64_t d = 0) {
  std::vector<float> v(8, 0.0f);
  v[size_t(d)] = a;
  return v;
}

TEST(KvPolicies, L2NormKeepsLowOrHighNorms) {
  // Norm of key j: |j - 10| + 1, so the lowest norms sit around j = 10.
  HandBuilt hb(20, [](int64_t j) { return axis(float(std::abs(j - 10) + 1), 1); }, axis(1));
  EXPECT_EQ(hb.survivors("l2norm:keep_tokens=3,skip_layers=[]"), (std::set<int64_t>{9, 10, 11}));
  EXPECT_EQ(hb.survivors("l2norm:keep_tokens=3,skip_layers=[],keep=high"), (std::set<int64_t>{0, 1, 19}));
  EXPECT_EQ(hb.survivors("l2norm:keep_tokens=3,skip_layers=[0]").size(), 20u);  // the seed skips layers 0, 1
}

TEST(KvPolicies, StreamingKeepsSinksAndRecent) {
  HandBuilt hb(20, [](int64_t j) { return axis(float(j + 1), 2); }, axis(1));
  EXPECT_EQ(hb.survivors("streaming:keep_tokens=6,n_sink=2"), (std::set<int64_t>{0, 1, 16, 17, 18, 19}));
}

// Keys at positions 3 and 12 align with every query (large logits); the rest are orthogonal.
std::vector<float> spike_key(int64_t j) { return j == 3 || j == 12 ? axis(8.0f, 0) : axis(1.0f, 5); }

TEST(KvPolicies, TovaEvictsWhatTheLastQueryIgnores) {
  HandBuilt hb(20, spike_key, axis(1.0f, 0));
  const auto kept = hb.survivors("tova:keep_tokens=2");
  EXPECT_EQ(kept, (std::set<int64_t>{3, 12}));
  EXPECT_EQ(hb.survivors("tova:keep_tokens=2", 1), kept);  // head-averaged: the same in every head
}

TEST(KvPolicies, SnapKvKeepsVotedEntriesAndTheWindow) {
  HandBuilt hb(20, spike_key, axis(1.0f, 0));
  EXPECT_EQ(hb.survivors("snapkv:keep_tokens=4,window_size=2,kernel_size=1"), (std::set<int64_t>{3, 12, 18, 19}));
  // Pooling spreads the votes to neighbours: with kernel 3 and max pooling 2, 4, 11, 13 tie with the
  // spikes; ties keep the earlier entry.
  EXPECT_EQ(hb.survivors("snapkv:keep_tokens=4,window_size=2,kernel_size=3,pooling=max"),
            (std::set<int64_t>{2, 3, 18, 19}));
}

TEST(KvPolicies, H2oKeepsHeavyHittersAndRecent) {
  HandBuilt hb(20, spike_key, axis(1.0f, 0));
  EXPECT_EQ(hb.survivors("h2o:keep_tokens=3,recent=1"), (std::set<int64_t>{3, 12, 19}));
}

TEST(KvPolicies, H2oAccumulatesAttentionDuringDecodeInTheCacheState) {
  const ModelConfig c = tiny_config(1);
  const Filled f = random_rows(c, 12, 13);
  KvCache cache(c);
  write(cache, c, f, 12);
  prefill_compress(*kv("h2o:keep_tokens=8"), c, f, 12, cache);
  ASSERT_EQ(cache.length(0), 8);
  const auto& st = cache.state(0).scores;
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].size(), 8u);  // compacted with K/V
  // Each of the 12 prefill queries spreads probability 1 (averaged over its group) over entries.
  double total = 0;
  for (const auto& s : st)
    for (float x : s) total += x;
  EXPECT_LE(total, 2 * 12 + 1e-3);
  EXPECT_GT(total, 0);
}

TEST(KvPolicies, RandomIsReproducibleFromItsSeed) {
  HandBuilt hb(30, [](int64_t j) { return axis(float(j), 3); }, axis(1));
  const auto a = hb.survivors("random:keep_tokens=10,seed=1"), b = hb.survivors("random:keep_tokens=10,seed=1");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 10u);
  EXPECT_NE(a, hb.survivors("random:keep_tokens=10,seed=2"));
}

TEST(KvPolicies, SnapKvRejectsEvenKernels) {
  const std::string msg = test::error_of([] { kv("snapkv:kernel_size=4"); });
  EXPECT_NE(msg.find("kernel_size=4 must be odd"), std::string::npos) << msg;
}

}  // namespace
}  // namespace ctx
