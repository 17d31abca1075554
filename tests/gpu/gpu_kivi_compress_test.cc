// KV compression composed with KIVI-quantized KV on the GPU engine (GpuEngineOptions::kv + kv_quant)
// against the float32 CPU engine with the same kv and kv_quant (KvCache::compact's rebuild: the
// compacted layer's quantized prefix re-quantized from the kept entries in fresh groups); label
// "gpu", built into gpu_engine_test.
// - Logits and kept positions, HF fixtures: a prompt of 150 tokens in prefill chunks of 64 (so that
//   the second and third chunks compress layers already holding codes: the rebuild), then decode
//   steps (forward of one token; with every = 3 decode steps rebuild too). Streaming and random keep
//   exactly the CPU's positions; l2norm and snapkv rank bf16 keys / attention, so near ties may swap:
//   at least 85% shared (as gpu_kvpress_test). Where the positions agree, the logits are within the
//   KIVI engine test's bound of the CPU's: relative L2 <= 2e-2 + 1/4 of the distance KIVI itself
//   moves the CPU's compressed logits by (bf16 rounding moves some codes one level).
// - Memory: after a prompt, the bytes the KV cache holds are exactly the ring plus the codes of
//   quantized_length(entries kept) entries per layer (the codes shrink with compression), fewer than
//   KIVI alone.
// - generate_greedy (CUDA graph replays, entry counts on the device) gives the tokens of forward()
//   one token at a time; decode-scored policies (h2o) are Unsupported with KIVI.
// - Paged KV (kv_block_size 16: KIVI's bf16 ring in pool blocks, gpu_kv_cache.h) gives the contiguous
//   engine's logits, kept positions and greedy tokens exactly (the same arithmetic on rows found
//   through the block table); it holds the codes plus the ring's blocks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/cuda/gpu_engine.h"
#include "core/kv/kv_quant.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "plugins/register_all.h"
#include "tests/gpu/gpu_engine_support.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda {
namespace {

using gpu_test::have_gpu;
using gpu_test::policy_of;
using gpu_test::RecordingCompressor;
using gpu_test::greedy_by_forward;
using gpu_test::kivi_code_bytes;
using test::relative_l2;

std::vector<int32_t> ids_of(int64_t n, int64_t vocab) { return gpu_test::spread_ids(n, vocab, 41, 5); }

KvQuantConfig kivi(int bits, int64_t group, int64_t residual) {
  KvQuantConfig q;
  q.bits = bits, q.group = group, q.residual = residual;
  return q;
}

constexpr int64_t kPrompt = 150, kChunk = 64, kSteps = 10;

// The CPU engine fed like the GPU engine: the prompt in chunks of kChunk, then one token a step; the
// last row of every forward.
struct CpuRun {
  std::vector<float> logits;
  std::shared_ptr<RecordingCompressor> recorder;
};
CpuRun cpu_run(const Model& model, const std::string& kv, const KvQuantConfig& q, const std::vector<int32_t>& ids) {
  Transformer cpu(model, builtin_catalog().attention.create("sdpa"));
  CpuRun r;
  r.recorder = std::make_shared<RecordingCompressor>(builtin_catalog().kv.create(kv));
  cpu.set_kv_compressor(r.recorder);
  cpu.set_kv_quantization(q);
  KvCache cache = cpu.new_cache();
  for (int64_t at = 0; at < int64_t(ids.size());) {
    const int64_t n = at < kPrompt ? std::min(kChunk, kPrompt - at) : 1;
    SequenceStep step{&cache, std::span<const int32_t>(ids.data() + at, size_t(n)), -1};
    const auto row = cpu.forward(std::span<const SequenceStep>(&step, 1));
    r.logits.insert(r.logits.end(), row.begin(), row.end());
    at += n;
  }
  return r;
}

std::vector<float> gpu_run(GpuEngine& engine, const std::vector<int32_t>& ids) {
  engine.reset();
  std::vector<float> out;
  for (int64_t at = 0; at < int64_t(ids.size());) {
    const int64_t n = at < kPrompt ? std::min(kChunk, kPrompt - at) : 1;
    const auto row = engine.forward(std::span<const int32_t>(ids.data() + at, size_t(n)), false);
    out.insert(out.end(), row.begin(), row.end());
    at += n;
  }
  return out;
}

struct Case {
  std::string fixture, spec;
  bool exact;  // kept positions equal the CPU's (else >= 85% shared)
  int bits;
};

class GpuKiviCompress : public ::testing::TestWithParam<Case> {};

TEST_P(GpuKiviCompress, KeepsTheCpuEnginesPositionsAndLogits) {
  const Case& c = GetParam();
  const auto model = load_model(test::shared_path("fixtures/hf/" + c.fixture));
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  const auto ids = ids_of(kPrompt + kSteps, model->config.vocab_size);
  const KvQuantConfig q = kivi(c.bits, 16, 8);
  const CpuRun want = cpu_run(*model, c.spec, q, ids);
  const CpuRun float_kv = cpu_run(*model, c.spec, KvQuantConfig{}, ids);
  GpuEngineOptions opt;
  opt.capacity = 256, opt.prefill_chunk = kChunk, opt.kv = policy_of(c.spec), opt.kv_quant = q;
  auto gpu = GpuEngine::create(*model, opt);
  const auto got = gpu_run(*gpu, ids);
  ASSERT_EQ(got.size(), want.logits.size());
  // Paged: the ring of 8 + 16 + 64 rows, rounded up to 96, in blocks of 16 (entries wrap around it).
  GpuEngineOptions paged_opt = opt;
  paged_opt.kv_block_size = 16;
  auto paged = GpuEngine::create(*model, paged_opt);
  EXPECT_EQ(gpu_run(*paged, ids), got) << c.spec << ": paged logits";
  for (const auto& [layer, heads] : want.recorder->positions)
    EXPECT_EQ(paged->kv_positions(layer), gpu->kv_positions(layer)) << c.spec << " layer " << layer;

  bool sets_agree = true;
  for (const auto& [layer, heads] : want.recorder->positions) {
    const auto held = gpu->kv_positions(layer);
    ASSERT_EQ(held.size(), heads.size());
    int64_t same = 0, shared = 0, total = 0;
    for (size_t h = 0; h < heads.size(); ++h) {
      ASSERT_EQ(held[h].size(), heads[h].size()) << c.spec << " layer " << layer << " head " << h;
      for (size_t i = 0; i < heads[h].size(); ++i) same += held[h][i] == heads[h][i] ? 1 : 0;
      for (int64_t p : heads[h]) shared += std::count(held[h].begin(), held[h].end(), p);
      total += int64_t(heads[h].size());
    }
    sets_agree = sets_agree && same == total;
    if (c.exact) {
      EXPECT_EQ(same, total) << c.spec << " layer " << layer;
    } else {
      std::printf("  layer %lld: %lld of %lld kept positions shared with the CPU\n", (long long)layer,
                  (long long)shared, (long long)total);
      EXPECT_GE(double(shared), 0.85 * double(total)) << c.spec << " layer " << layer;
    }
  }
  const size_t n = got.size();
  const double err = relative_l2(got.data(), want.logits.data(), n);
  const double effect = relative_l2(want.logits.data(), float_kv.logits.data(), n);
  const double to_float = relative_l2(got.data(), float_kv.logits.data(), n);
  std::printf("%s %s + kivi int%d: ||gpu - cpu|| / ||cpu|| = %.3g (both with kivi); gpu vs cpu without kivi %.3g; "
              "kivi moves the cpu's compressed logits by %.3g\n",
              c.fixture.c_str(), c.spec.c_str(), c.bits, err, to_float, effect);
  EXPECT_GT(effect, 0.0) << "entries were quantized";
  if (sets_agree) {
    EXPECT_LE(err, 2e-2 + 0.25 * effect) << c.spec;
  } else {
    std::printf("  kept positions differ from the CPU's: the bound is not asserted\n");
  }
}

INSTANTIATE_TEST_SUITE_P(
    HfFixtures, GpuKiviCompress,
    ::testing::Values(Case{"llama", "streaming:keep_ratio=0.5,n_sink=4", true, 8},
                      Case{"llama", "streaming:keep_ratio=0.5,n_sink=4", true, 4},
                      Case{"qwen3", "random:keep_ratio=0.5,seed=3", true, 8},
                      Case{"llama", "streaming:keep_tokens=40,every=3,protect_recent=4", true, 8},
                      Case{"llama_mha", "l2norm:keep_ratio=0.5,skip_layers=[]", false, 8},
                      Case{"llama", "snapkv:keep_ratio=0.5,window_size=16", false, 8}),
    [](const auto& info) { return info.param.fixture + "_" + std::to_string(info.index); });

// Bytes of the KIVI cache: per KV layer the bf16 ring (K and V) and the codes and params of `rows`
// quantized entries, a whole number of groups (none: the four buffers hold one element each).
int64_t kivi_cache_bytes(const ModelConfig& c, const KvQuantConfig& q, int64_t ring, int64_t rows) {
  const int64_t codes = rows > 0 ? c.num_kv_heads * kivi_code_bytes(q, c.head_dim, rows) : 2 * 1 + 2 * 4;
  return c.num_kv_layers() * (2 * c.num_kv_heads * ring * c.head_dim * 2 + codes);
}

TEST(GpuKiviCompressEngine, CodesShrinkWithTheKeptEntries) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  const auto ids = ids_of(256, model->config.vocab_size);
  const KvQuantConfig q = kivi(8, 16, 8);
  auto held = [&](const std::string& spec, int64_t* peak) {
    GpuEngineOptions opt;
    opt.capacity = 512, opt.prefill_chunk = kChunk, opt.kv = policy_of(spec), opt.kv_quant = q;
    auto engine = GpuEngine::create(*model, opt);
    engine->reset_peak_memory();
    engine->forward(ids, false);
    *peak = engine->memory().peak_bytes;
    return engine->kv_cache_bytes();
  };
  int64_t peak_alone = 0, peak_both = 0;
  const int64_t alone = held("none", &peak_alone);
  const int64_t both = held("l2norm:keep_ratio=0.25,skip_layers=[]", &peak_both);
  const int64_t ring = q.residual + q.group + kChunk;  // < capacity: the ring
  // KIVI alone: quantized_length(256) = 240 entries of codes; with keep 0.25: 64 entries kept,
  // quantized_length(64) = 48.
  EXPECT_EQ(alone, kivi_cache_bytes(model->config, q, ring, q.quantized_length(256)));
  EXPECT_EQ(both, kivi_cache_bytes(model->config, q, ring, q.quantized_length(64)));
  EXPECT_LT(both, alone);
  std::printf("KV cache bytes: kivi int8 %lld, kivi int8 + l2norm 0.25 %lld; peak device bytes %lld vs %lld\n",
              (long long)alone, (long long)both, (long long)peak_alone, (long long)peak_both);
  // Paged (blocks of 16): after the prompt the 64 kept entries' ring rows take 4 blocks of the ring's 6
  // (88 rounded up to 96 rows); in use are those and the codes of quantized_length(64) entries.
  GpuEngineOptions opt;
  opt.capacity = 512, opt.prefill_chunk = kChunk, opt.kv_quant = q, opt.kv_block_size = 16;
  opt.kv = policy_of("l2norm:keep_ratio=0.25,skip_layers=[]");
  auto paged = GpuEngine::create(*model, opt);
  paged->forward(ids, false);
  const ModelConfig& c = model->config;
  const int64_t block_bytes = 2 * c.num_kv_layers() * c.num_kv_heads * 16 * c.head_dim * 2;
  EXPECT_EQ(paged->kv_cache_bytes_in_use(), kivi_cache_bytes(c, q, 0, q.quantized_length(64)) + 4 * block_bytes);
  std::printf("paged: KV cache bytes in use %lld, held %lld\n", (long long)paged->kv_cache_bytes_in_use(),
              (long long)paged->kv_cache_bytes());
}

TEST(GpuKiviCompressEngine, GreedyDecodeThroughTheGraphMatchesForwardSteps) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  const auto ids = ids_of(100, model->config.vocab_size);
  for (const std::string spec : {"l2norm:keep_ratio=0.5,skip_layers=[]", "streaming:keep_tokens=30,every=4",
                                  "snapkv:keep_tokens=30,window_size=8"}) {
    GpuEngineOptions opt;
    opt.capacity = 256, opt.prefill_chunk = kChunk, opt.kv = policy_of(spec), opt.kv_quant = kivi(8, 16, 8);
    auto engine = GpuEngine::create(*model, opt);
    const auto greedy = engine->generate_greedy(ids, 12, {}, nullptr);
    engine->reset();
    const std::vector<int32_t> stepped = greedy_by_forward(*engine, ids, 12);
    EXPECT_EQ(greedy, stepped) << spec;
    opt.kv_block_size = 16;  // paged: the same tokens
    EXPECT_EQ(GpuEngine::create(*model, opt)->generate_greedy(ids, 12, {}, nullptr), greedy) << spec << " paged";
  }
}

TEST(GpuKiviCompressEngine, RefusesWhatItCannotRun) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  if (!have_gpu()) GTEST_SKIP() << "no GPU";
  GpuEngineOptions opt;
  opt.capacity = 128, opt.kv_quant = kivi(8, 16, 8);
  for (const std::string spec : {"h2o:keep_ratio=0.5", "tova:keep_ratio=0.5,every=2"}) {
    opt.kv = policy_of(spec);
    try {
      GpuEngine::create(*model, opt);
      ADD_FAILURE() << spec << " with kivi accepted";
    } catch (const Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find("scores decode steps"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace ctx::cuda
