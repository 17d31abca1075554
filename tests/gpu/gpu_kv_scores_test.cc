// Attention-scored KV compression on the GPU (snapkv, h2o, tova; core/cuda/gpu_kv_scorer.h,
// kernels/kv_score_kernels.h); label "gpu", built into gpu_engine_test. The engine's decode steps
// against the CPU engine are cases of gpu_kvpress_test.cc's GpuKvEngine (kept positions shared >= 85%,
// logits within 2e-2 relative L2 wherever the kept positions agree).
// - The score kernels alone: the votes (softmax probabilities of query rows over the visible
//   entries, summed over the rows, averaged over each KV head's query heads) against a float64
//   reference on the same bf16 values, |gpu - ref| <= 1e-4 ref + 1e-6 rows: window rows of a
//   prefill (GQA), one decode query with a capacity-sized grid, a whole chunk after earlier entries
//   (paged), sharp logits, and a head_dim that is not a multiple of 8.
// - The kernels with the selection: the CPU plugins' kept indices on the same bf16 K/V/Q, equal
//   except at score ties: an index kept by one side only must have a float64 reference score within
//   1e-4 (relative: float32 sums in another order) of the CPU's cut (the lowest score it kept from
//   the pool); K/V rows compacted bit for bit.
// - The engine after a prompt on HF fixtures against the CPU engine: the kept positions equal the
//   CPU's except at ties within bf16 tolerance (a position kept by one side only scores, by the CPU's
//   float32 scores, within 10% of the CPU's cut), the logits within 2e-2 relative L2 (the prompt's
//   own attention ran over every entry).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_kv_compress.h"
#include "core/kv/attention_probs.h"
#include "core/kv/kv_compressor.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "plugins/register_all.h"
#include "tests/support/model_check.h"
#include "tests/gpu/gpu_engine_support.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda {
namespace {

using gpu_test::have_gpu;
using gpu_test::policy_of;

// Deterministic values in [-amp, amp) rounded to bf16; every 7th row of a block of `row` floats
// repeats row 3 when `ties` (equal keys: equal scores).
std::vector<float> bf16_values(int64_t rows, int64_t row, uint64_t seed, float amp, bool ties) {
  std::vector<float> x(size_t(rows * row));
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (float& f : x) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    f = bf16_to_f32(f32_to_bf16(amp * float(int64_t(s >> 40) - (int64_t(1) << 23)) / float(int64_t(1) << 23)));
  }
  if (ties)
    for (int64_t j = 7; j < rows; j += 7) std::memcpy(&x[size_t(j * row)], &x[size_t(3 * row)], size_t(row) * 4);
  return x;
}

// Keys [kv_head][length][hd] from rows [length][kv_head][hd] (the layout bf16_values ties).
std::vector<float> head_major(const std::vector<float>& rows, int64_t length, int64_t kv_heads, int64_t hd) {
  std::vector<float> out(rows.size());
  for (int64_t j = 0; j < length; ++j)
    for (int64_t h = 0; h < kv_heads; ++h)
      std::memcpy(&out[size_t((h * length + j) * hd)], &rows[size_t((j * kv_heads + h) * hd)], size_t(hd) * 4);
  return out;
}

// float64 votes [kv_head][length]: query rows [row_begin, row_end) of a step of n_new rows, q
// [rows][heads][hd], k [kv_head][length][hd].
std::vector<double> reference_votes(const GpuKvVotesCase& c, const std::vector<float>& q, const std::vector<float>& k) {
  const int64_t group = c.heads / c.kv_heads;
  std::vector<double> votes(size_t(c.kv_heads * c.length), 0.0);
  for (int64_t r = 0; r < c.row_end - c.row_begin; ++r)
    for (int64_t head = 0; head < c.heads; ++head) {
      const int64_t g = head / group, visible = c.length - c.n_new + c.row_begin + r + 1;
      std::vector<double> s(static_cast<size_t>(visible));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < visible; ++j) {
        double d = 0;
        for (int64_t e = 0; e < c.hd; ++e)
          d += double(q[size_t((r * c.heads + head) * c.hd + e)]) * double(k[size_t((g * c.length + j) * c.hd + e)]);
        s[size_t(j)] = d * double(c.scale);
        mx = std::max(mx, s[size_t(j)]);
      }
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < visible; ++j) votes[size_t(g * c.length + j)] += s[size_t(j)] / sum / double(group);
    }
  return votes;
}

TEST(GpuKvScores, VotesMatchAFloat64Reference) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  struct Case {
    const char* what;
    GpuKvVotesCase c;
  };
  auto make = [](int64_t heads, int64_t kv_heads, int64_t hd, int64_t length, int64_t n_new, int64_t row_begin,
                 int64_t row_end, int64_t block_size, int64_t bound, float scale) {
    GpuKvVotesCase c;
    c.heads = heads, c.kv_heads = kv_heads, c.hd = hd, c.length = length, c.n_new = n_new;
    c.row_begin = row_begin, c.row_end = row_end, c.block_size = block_size, c.length_bound = bound, c.scale = scale;
    return c;
  };
  const std::vector<Case> cases = {
      {"snapkv window of a prefill, GQA 4/2, hd 16", make(4, 2, 16, 300, 300, 236, 300, 0, 0, 0.25f)},
      {"one decode query, MHA 4/4, hd 64, grid for 5000", make(4, 4, 64, 1000, 1, 0, 1, 0, 5000, 0.125f)},
      {"a chunk of 200 after 500 entries, GQA 8/2, hd 128, paged 16", make(8, 2, 128, 700, 200, 0, 200, 16, 0, 0.0884f)},
      {"sharp logits (scale 1), last query, hd 64, paged 8", make(2, 2, 64, 513, 513, 512, 513, 8, 0, 1.0f)},
      {"hd 12, GQA 2/1, window 10 of 77", make(2, 1, 12, 77, 77, 67, 77, 0, 0, 0.3f)},
      {"window rows of a short chunk after 4000 entries, MHA 2/2, hd 128", make(2, 2, 128, 4100, 100, 36, 100, 0, 8192, 0.0884f)},
  };
  for (const Case& tc : cases) {
    const GpuKvVotesCase& c = tc.c;
    const int64_t rows = c.row_end - c.row_begin;
    const auto q = bf16_values(rows, c.heads * c.hd, 11, 1.0f, false);
    const auto k = head_major(bf16_values(c.length, c.kv_heads * c.hd, 12, 1.0f, true), c.length, c.kv_heads, c.hd);
    const auto got = gpu_kv_attention_votes(c, q, k);
    const auto ref = reference_votes(c, q, k);
    ASSERT_EQ(got.size(), ref.size()) << tc.what;
    double worst = 0, total = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double err = std::abs(double(got[i]) - ref[i]);
      worst = std::max(worst, err / (1e-4 * ref[i] + 1e-6 * double(rows)));
      total += double(got[i]);
      ASSERT_LE(err, 1e-4 * ref[i] + 1e-6 * double(rows)) << tc.what << " at " << i << ": " << got[i] << " vs " << ref[i];
    }
    // Every (row, query head) distributes probability 1 over its entries: the votes sum to rows * kv_heads.
    EXPECT_NEAR(total, double(rows * c.kv_heads), 1e-3 * double(rows * c.kv_heads)) << tc.what;
    std::printf("votes vs float64 (%s): worst error %.3g of the bound\n", tc.what, worst);
  }
}

// The float64 scores the plugin ranks by, for a prefill step whose rows are all `length` entries.
std::vector<double> reference_scores(const std::string& method, const GpuKvPolicy& p, int64_t heads, int64_t kv_heads,
                                     int64_t hd, int64_t length, float scale, const std::vector<float>& q,
                                     const std::vector<float>& k) {
  GpuKvVotesCase c;
  c.heads = heads, c.kv_heads = kv_heads, c.hd = hd, c.length = length, c.n_new = length, c.scale = scale;
  const GpuKvPolicy::Rows rows = p.attention_rows(length);
  c.row_begin = rows.begin, c.row_end = rows.end;
  const std::vector<float> q_rows(q.begin() + rows.begin * heads * hd, q.begin() + rows.end * heads * hd);
  const auto votes = reference_votes(c, q_rows, k);
  std::vector<double> s(votes.size());
  for (int64_t h = 0; h < kv_heads; ++h)
    for (int64_t j = 0; j < length; ++j) {
      double& out = s[size_t(h * length + j)];
      if (method == "tova" && !p.per_head) {
        out = 0;
        for (int64_t hh = 0; hh < kv_heads; ++hh) out += votes[size_t(hh * length + j)] / double(kv_heads);
      } else if (method == "snapkv") {
        const int64_t w = std::min(p.window, length), prefix = length - w, half = p.kernel / 2;
        if (j >= prefix) {
          out = DBL_MAX;
          continue;
        }
        double pooled = p.max_pool ? -DBL_MAX : 0;
        for (int64_t i = std::max<int64_t>(0, j - half); i < std::min(prefix, j + half + 1); ++i)
          pooled = p.max_pool ? std::max(pooled, votes[size_t(h * length + i)]) : pooled + votes[size_t(h * length + i)];
        out = p.max_pool ? pooled : pooled / double(p.kernel);
      } else {
        out = votes[size_t(h * length + j)];
      }
    }
  return s;
}

TEST(GpuKvScores, KernelsKeepTheCpuPluginsIndicesExceptAtTies) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  const int64_t heads = 4, kv_heads = 2, length = 300, hd = 64, layer = 1, position = 300;
  const float scale = 0.125f;
  const auto q = bf16_values(length, heads * hd, 21, 1.0f, false);  // [length][heads][hd]
  const auto k = head_major(bf16_values(length, kv_heads * hd, 22, 1.0f, true), length, kv_heads, hd);
  const auto v = head_major(bf16_values(length, kv_heads * hd, 23, 1.0f, false), length, kv_heads, hd);
  for (const std::string spec :
       {"snapkv:keep_ratio=0.5", "snapkv:keep_tokens=70,window_size=16,kernel_size=3,pooling=max",
        "snapkv:keep_ratio=0.3,window_size=8,kernel_size=1,protect_recent=20", "h2o:keep_ratio=0.5",
        "h2o:keep_tokens=50,recent=10", "tova:keep_ratio=0.5", "tova:keep_tokens=77,per_head=true,protect_recent=5"}) {
    const std::string method = spec.substr(0, spec.find(':'));
    const auto cpu = builtin_catalog().kv.create(spec);
    KvLayerState state;
    KvStep step;
    step.layer = layer, step.num_heads = heads, step.num_kv_heads = kv_heads, step.head_dim = hd;
    step.scale = scale, step.q = q.data(), step.n_new = length, step.position = position, step.state = &state;
    step.kv.k = k.data(), step.kv.v = v.data(), step.kv.length = length;
    step.kv.num_kv_heads = kv_heads, step.kv.head_dim = hd, step.kv.capacity = length;
    const KvKeep keep = cpu->after_step(step);
    ASSERT_FALSE(keep.all) << spec;
    const GpuKvPolicy policy = policy_of(spec);
    const auto ref = reference_scores(method, policy, heads, kv_heads, hd, length, scale, q, k);
    for (int64_t block_size : {0, 16}) {
      GpuKvCompressCase c;
      c.policy = policy;
      c.layer = layer, c.position = position, c.kv_heads = kv_heads, c.length = length, c.hd = hd;
      c.count = c.policy.target(layer, length, position), c.block_size = block_size;
      c.heads = heads, c.n_new = length, c.scale = scale;
      ASSERT_EQ(c.count, keep.count) << spec;
      const GpuKvCompressResult r = gpu_kv_compress(c, k, v, q);
      ASSERT_EQ(r.kept.size(), keep.indices.size()) << spec;
      const int64_t pool = length - policy.protect(c.count);
      int64_t differing = 0;
      for (int64_t h = 0; h < kv_heads; ++h) {
        const std::set<int64_t> cpu_kept(keep.indices.begin() + h * c.count, keep.indices.begin() + (h + 1) * c.count);
        std::set<int64_t> gpu_kept;
        for (int64_t i = 0; i < c.count; ++i) gpu_kept.insert(r.kept[size_t(h * c.count + i)]);
        double cut = DBL_MAX;  // the lowest reference score the CPU kept from the pool
        for (int64_t j : cpu_kept)
          if (j < pool) cut = std::min(cut, ref[size_t(h * length + j)]);
        for (int64_t j = 0; j < length; ++j)
          if (cpu_kept.count(j) != gpu_kept.count(j)) {
            ++differing;
            ASSERT_LT(j, pool) << spec << ": protected entry " << j << " differs";
            const double s = ref[size_t(h * length + j)];
            EXPECT_LE(std::abs(s - cut), 1e-4 * std::abs(cut) + 1e-12)
                << spec << " block size " << block_size << " head " << h << ": entry " << j << " (score " << s
                << ", cut " << cut << ") kept by " << (gpu_kept.count(j) ? "the GPU" : "the CPU") << " only";
          }
        // Compacted rows are the kept rows, bit for bit.
        for (int64_t i = 0; i < c.count; ++i) {
          const size_t from = size_t((h * length + r.kept[size_t(h * c.count + i)]) * hd), to = size_t((h * c.count + i) * hd);
          ASSERT_EQ(std::memcmp(&r.k[to], &k[from], size_t(hd) * 4), 0) << spec << " K row " << i;
          ASSERT_EQ(std::memcmp(&r.v[to], &v[from], size_t(hd) * 4), 0) << spec << " V row " << i;
        }
      }
      std::printf("kernel kept indices %s (block size %lld): %lld differ from the CPU's, at ties\n", spec.c_str(),
                  (long long)block_size, (long long)differing);
    }
  }
}

// The CPU plugin wrapped: at the first compression of each layer, its kept positions (entries are
// positions then) and the float32 scores it ranked by, recomputed from the step as the plugin does.
class ScoreRecorder final : public KvCompressor {
 public:
  ScoreRecorder(std::unique_ptr<KvCompressor> inner, std::string method, GpuKvPolicy policy)
      : inner_(std::move(inner)), method_(std::move(method)), policy_(policy) {}
  Support supports(const ModelConfig& c) const override { return inner_->supports(c); }
  int64_t headroom() const override { return inner_->headroom(); }
  KvKeep after_step(const KvStep& s) const override {
    KvKeep keep = inner_->after_step(s);
    if (keep.all || first.count(s.layer)) return keep;
    Record& rec = first[s.layer];
    rec.count = keep.count, rec.kept = keep.indices, rec.length = s.kv.length;
    std::vector<std::vector<float>> votes;
    if (method_ == "h2o") {
      votes = s.state->scores;  // accumulated (observe() ran inside after_step; compaction comes later)
    } else {
      const GpuKvPolicy::Rows rows = policy_.attention_rows(s.n_new);
      accumulate_attention(s, rows.begin, rows.end, votes);
    }
    rec.scores.assign(size_t(s.num_kv_heads * s.kv.length), 0.f);
    for (int64_t h = 0; h < s.num_kv_heads; ++h)
      for (int64_t j = 0; j < s.kv.length; ++j) {
        float& out = rec.scores[size_t(h * s.kv.length + j)];
        if (method_ == "tova" && !policy_.per_head) {
          for (int64_t hh = 0; hh < s.num_kv_heads; ++hh) out += votes[size_t(hh)][size_t(j)] / float(s.num_kv_heads);
        } else if (method_ == "snapkv") {
          const int64_t w = std::min(policy_.window, s.n_new), prefix = s.kv.length - w, half = policy_.kernel / 2;
          if (j >= prefix) {
            out = FLT_MAX;
            continue;
          }
          float pooled = policy_.max_pool ? -FLT_MAX : 0.f;
          for (int64_t i = std::max<int64_t>(0, j - half); i < std::min(prefix, j + half + 1); ++i)
            pooled = policy_.max_pool ? std::max(pooled, votes[size_t(h)][size_t(i)]) : pooled + votes[size_t(h)][size_t(i)];
          out = policy_.max_pool ? pooled : pooled / float(policy_.kernel);
        } else {
          out = votes[size_t(h)][size_t(j)];
        }
      }
    return keep;
  }
  struct Record {
    int64_t count = 0, length = 0;
    std::vector<int64_t> kept;
    std::vector<float> scores;  // [kv_head][length]
  };
  mutable std::map<int64_t, Record> first;

 private:
  std::unique_ptr<KvCompressor> inner_;
  std::string method_;
  GpuKvPolicy policy_;
};

struct ScoreCase {
  std::string fixture, spec;
};
class GpuKvScoresEngine : public ::testing::TestWithParam<ScoreCase> {};

TEST_P(GpuKvScoresEngine, KeepsTheCpuEnginesPositionsAfterThePromptExceptAtTies) {
  const ScoreCase& sc = GetParam();
  const auto model = load_model(test::shared_path("fixtures/hf/" + sc.fixture));
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  const int64_t prompt = 120, vocab = model->config.vocab_size;
  const std::vector<int32_t> ids = gpu_test::token_ids(prompt, vocab);
  const GpuKvPolicy policy = policy_of(sc.spec);
  Transformer cpu(*model, builtin_catalog().attention.create("sdpa"));
  auto recorder = std::make_shared<ScoreRecorder>(builtin_catalog().kv.create(sc.spec), sc.spec.substr(0, sc.spec.find(':')),
                                                  policy);
  cpu.set_kv_compressor(recorder);
  KvCache cache = cpu.new_cache();
  SequenceStep step{&cache, std::span<const int32_t>(ids), -1};
  const auto ref = cpu.forward(std::span<const SequenceStep>(&step, 1));
  GpuEngineOptions opt;
  opt.capacity = 256, opt.kv = policy;
  auto gpu = GpuEngine::create(*model, opt);
  const auto got = gpu->forward(ids, false);
  const double err = test::relative_l2(got.data(), ref.data(), ref.size());
  EXPECT_LE(err, 2e-2) << "prompt logits";
  ASSERT_FALSE(recorder->first.empty()) << sc.spec << ": the CPU did not compress";
  for (const auto& [layer, rec] : recorder->first) {
    const auto held = gpu->kv_positions(layer);
    const int64_t kv_heads = int64_t(held.size()), pool = rec.length - policy.protect(rec.count);
    int64_t differing = 0;
    double worst = 0;
    for (int64_t h = 0; h < kv_heads; ++h) {
      ASSERT_EQ(int64_t(held[size_t(h)].size()), rec.count) << sc.spec << " layer " << layer;
      const std::set<int64_t> cpu_kept(rec.kept.begin() + h * rec.count, rec.kept.begin() + (h + 1) * rec.count);
      const std::set<int64_t> gpu_kept(held[size_t(h)].begin(), held[size_t(h)].end());
      float cut = FLT_MAX;
      for (int64_t j : cpu_kept)
        if (j < pool) cut = std::min(cut, rec.scores[size_t(h * rec.length + j)]);
      for (int64_t j = 0; j < rec.length; ++j)
        if (cpu_kept.count(j) != gpu_kept.count(j)) {
          ++differing;
          ASSERT_LT(j, pool) << sc.spec << " layer " << layer << ": protected entry " << j << " differs";
          const double rel = std::abs(double(rec.scores[size_t(h * rec.length + j)]) - cut) / std::abs(double(cut));
          worst = std::max(worst, rel);
          EXPECT_LE(rel, 0.10) << sc.spec << " layer " << layer << " head " << h << ": position " << j << " (score "
                               << rec.scores[size_t(h * rec.length + j)] << ", CPU cut " << cut << ") kept by "
                               << (gpu_kept.count(j) ? "the GPU" : "the CPU") << " only";
        }
    }
    std::printf("%s %s layer %lld: %lld of %lld kept positions differ from the CPU's (worst %.3g of the cut away)\n",
                sc.fixture.c_str(), sc.spec.c_str(), (long long)layer, (long long)differing,
                (long long)(kv_heads * rec.count), worst);
  }
}

INSTANTIATE_TEST_SUITE_P(
    HfFixtures, GpuKvScoresEngine,
    ::testing::Values(ScoreCase{"llama", "snapkv:keep_ratio=0.5,window_size=16"},
                      ScoreCase{"llama_mha", "snapkv:keep_tokens=40,window_size=8,kernel_size=3,pooling=max"},
                      ScoreCase{"qwen3", "snapkv:keep_ratio=0.5,window_size=16"},
                      ScoreCase{"llama", "h2o:keep_ratio=0.5"}, ScoreCase{"qwen3", "h2o:keep_tokens=48,recent=8"},
                      ScoreCase{"llama", "tova:keep_ratio=0.5"},
                      ScoreCase{"llama_mha", "tova:keep_ratio=0.5,per_head=true"}),
    [](const auto& info) { return info.param.fixture + "_" + std::to_string(info.index); });

}  // namespace
}  // namespace ctx::cuda
