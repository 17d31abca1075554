// The GPU engine with KIVI-quantized KV (GpuEngineOptions::kv_quant) against the float32 CPU engine
// (Transformer::set_kv_quantization) with the same config, on HF fixtures and on a random model of
// head_dim 128 (the fused kernel's wide path; the fixtures' head_dim 16 takes the generic one): a
// prompt prefilled at once, then token by token, so that groups complete during prefill and decode.
// Tolerance: bf16 against float32 as gpu_engine_test (relative L2 <= 2e-2), plus the codes that the
// bf16 rounding of K/V moves across a rounding boundary (one level each, in a small share of the
// entries): <= 2e-2 + 1/4 of the distance kv_quant itself moves the CPU's logits by, so that the
// GPU is much closer to the CPU with kv_quant than to the CPU without (printed: every distance). Greedy
// decoding by graph replays gives the tokens of plain launches, a batch each prompt's tokens alone;
// what the engine cannot serve with KIVI is Unsupported. Paged KV (gpu_kv_cache.h: the bf16 ring's
// rows in pool blocks; with blocks of 64 the ring would be the capacity, so the positions are paged
// as such) gives the contiguous engine's logits and tokens exactly, single and batched. Label "gpu".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "core/kv/kv_quant.h"
#include "core/model/generate.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "plugins/register_all.h"
#include "tests/gpu/gpu_engine_support.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda {
namespace {

double distance(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), ref.size()); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return a.size() == ref.size() ? std::sqrt(num / den) : INFINITY;
}

std::vector<int32_t> prompt_ids(int64_t n, int64_t vocab) { return gpu_test::spread_ids(n, vocab, 53, 7); }

// Logits of every token: ids[0, prefill) in forwards of `chunk` tokens (0: one), the rest one at a time.
std::vector<float> cpu_logits(const Model& model, const KvQuantConfig& q, const std::vector<int32_t>& ids, int64_t prefill,
                              int64_t chunk = 0) {
  Transformer cpu(model, builtin_catalog().attention.create("sdpa"));
  cpu.set_kv_quantization(q);
  KvCache cache = cpu.new_cache(int64_t(ids.size()));
  const std::span<const int32_t> all(ids);
  std::vector<float> out = forward_in_chunks(cpu, {SequenceStep{&cache, all.first(size_t(prefill)), 0}}, chunk);
  for (size_t at = size_t(prefill); at < ids.size(); ++at) {
    const SequenceStep step{&cache, all.subspan(at, 1), 0};
    const auto rows = cpu.forward(std::span<const SequenceStep>(&step, 1));
    out.insert(out.end(), rows.begin(), rows.end());
  }
  return out;
}

std::vector<float> gpu_logits(GpuEngine& engine, const std::vector<int32_t>& ids, int64_t prefill) {
  engine.reset();
  auto out = engine.forward(std::span<const int32_t>(ids.data(), size_t(prefill)), true);
  for (size_t t = size_t(prefill); t < ids.size(); ++t) {
    const auto row = engine.forward(std::span<const int32_t>(&ids[t], 1), false);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

void check_model(const Model& model, const std::string& name) {
  const int64_t len = 100, prefill = 45;
  const auto ids = prompt_ids(len, model.config.vocab_size);
  const auto plain_cpu = cpu_logits(model, KvQuantConfig{}, ids, prefill);
  for (int bits : {2, 4, 8}) {
    KvQuantConfig q;
    q.bits = bits, q.group = 16, q.residual = 8;  // groups complete in the prefill (2) and while decoding (3)
    const auto want = cpu_logits(model, q, ids, prefill);
    const double effect = distance(want, plain_cpu);
    GpuEngineOptions opt;
    opt.capacity = 128, opt.prefill_chunk = 64, opt.kv_quant = q;
    std::unique_ptr<GpuEngine> engine;
    try {
      engine = GpuEngine::create(model, opt);
    } catch (const Unsupported& e) {
      std::printf("%s int%d: kv_quant moves the cpu's logits by %.3g\n", name.c_str(), bits, effect);
      if (bits == 8) GTEST_SKIP() << e.what();
      continue;
    }
    const auto got = gpu_logits(*engine, ids, prefill);
    for (int64_t block : {16, 64}) {  // a ring of 88 rows rounded up to 96 (wrapping at 100 tokens); none
      GpuEngineOptions paged = opt;
      paged.kv_block_size = block;
      EXPECT_EQ(gpu_logits(*GpuEngine::create(model, paged), ids, prefill), got)
          << name << " int" << bits << " paged, blocks of " << block;
    }
    const double err = distance(got, want), to_plain = distance(got, plain_cpu);
    std::printf("%s int%d: ||gpu - cpu|| / ||cpu|| = %.3g with kv_quant on both; gpu vs cpu without: %.3g; "
                "kv_quant moves the cpu's logits by %.3g\n",
                name.c_str(), bits, err, to_plain, effect);
    EXPECT_LE(err, 2e-2 + 0.25 * effect) << name << " int" << bits;
    // Graph replays (the quantization at the position in device memory) give the tokens of plain
    // launches.
    const std::vector<int32_t> prompt(ids.begin(), ids.begin() + prefill);
    const auto gen = engine->generate_greedy(prompt, 40, {}, nullptr);
    GpuEngineOptions plain = opt;
    plain.use_graphs = false;
    EXPECT_EQ(GpuEngine::create(model, plain)->generate_greedy(prompt, 40, {}, nullptr), gen) << name << " int" << bits;
    GpuEngineOptions paged = opt;
    paged.kv_block_size = 16;
    EXPECT_EQ(GpuEngine::create(model, paged)->generate_greedy(prompt, 40, {}, nullptr), gen)
        << name << " int" << bits << " paged";
  }
}

class GpuKiviEngine : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuKiviEngine, LogitsMatchTheCpuEngineWithTheSameKvQuant) {
  const auto model = load_model(test::shared_path("fixtures/hf/" + GetParam()));
  check_model(*model, GetParam());
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, GpuKiviEngine, ::testing::Values("llama", "llama_mha", "qwen3"));

std::unique_ptr<Model> hd128_model() {
  const std::string path = ::testing::TempDir() + "gpu_kivi_hd128.json";
  {
    std::ofstream f(path);
    f << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 128,
            "intermediate_size": 512, "vocab_size": 300, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "max_position_embeddings": 4096, "tie_word_embeddings": false, "hidden_act": "silu",
            "initializer_range": 0.05})";
  }
  return load_model("random:" + path + ":5");
}

TEST(GpuKiviEngineWide, HeadDim128) {
  const auto model = hd128_model();
  check_model(*model, "random hd128");
}

// KIVI prompts in chunks of >= 64 tokens take the flash prefill kernels over the layer expanded to
// bf16 (GpuEngineOptions::kivi_flash_prefill): a 300-token prompt in chunks of 64 (the later chunks
// see the quantized groups of the earlier ones), then 20 decode steps, against the CPU engine cut into
// the same forwards, with the bound of check_model; the split-KV kernel reading the codes in place
// (the option off) is held to the same bound, and the distance between the two is printed.
TEST(GpuKiviEngineWide, FlashPrefillOverTheExpandedLayer) {
  const auto model = hd128_model();
  const int64_t len = 320, prefill = 300, chunk = 64;
  const auto ids = prompt_ids(len, model->config.vocab_size);
  const auto plain_cpu = cpu_logits(*model, KvQuantConfig{}, ids, prefill, chunk);
  for (int bits : {4, 8}) {
    KvQuantConfig q;
    q.bits = bits, q.group = 32, q.residual = 32;
    const auto want = cpu_logits(*model, q, ids, prefill, chunk);
    const double effect = distance(want, plain_cpu);
    std::vector<std::vector<float>> got;
    for (bool flash : {true, false}) {
      GpuEngineOptions opt;
      opt.capacity = 512, opt.prefill_chunk = chunk, opt.kv_quant = q, opt.kivi_flash_prefill = flash;
      std::unique_ptr<GpuEngine> engine;
      try {
        engine = GpuEngine::create(*model, opt);
      } catch (const Unsupported& e) {
        GTEST_SKIP() << e.what();
      }
      got.push_back(gpu_logits(*engine, ids, prefill));
      const double err = distance(got.back(), want);
      std::printf("random hd128 int%d, prompt of %lld in chunks of %lld, %s: ||gpu - cpu|| / ||cpu|| = %.3g; kv_quant "
                  "moves the cpu's logits by %.3g\n",
                  bits, (long long)prefill, (long long)chunk, flash ? "flash over the expanded layer" : "split-KV on the codes",
                  err, effect);
      EXPECT_LE(err, 2e-2 + 0.25 * effect) << "int" << bits << (flash ? " flash" : " split-KV");
    }
    std::printf("random hd128 int%d: flash vs split-KV %.3g\n", bits, distance(got[0], got[1]));
  }
}

TEST(GpuKiviEngineErrors, UnsupportedCombinations) {
  const auto model = load_model(test::shared_path("fixtures/hf/mistral_swa"));
  GpuEngineOptions opt;
  opt.capacity = 64, opt.kv_quant.bits = 4;
  try {
    GpuEngine::create(*model, opt);
    FAIL() << "sliding windows with kv_quant should be unsupported";
  } catch (const Unsupported& e) {
    const std::string what = e.what();
    if (what.find("no CUDA device") != std::string::npos) GTEST_SKIP() << what;
    EXPECT_NE(what.find("sliding-window"), std::string::npos) << what;
  }
}

// The batch tests' prompts on stories260K: 1, 5, 17 and 60 tokens after BOS.
std::vector<std::vector<int32_t>> batch_prompts(const ModelConfig& c) {
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t n : {1, 5, 17, 60}) {
    auto ids = gpu_test::token_ids(n, c.vocab_size, n);
    ids[0] = 1;  // BOS
    prompts.push_back(ids);
  }
  return prompts;
}

// Batched decode with KIVI KV: each sequence's groups are quantized as its own decode completes them
// (prompts of 1 to 60 tokens: groups complete in the prefill of some, in the decode of all, at
// different steps), with and without CUDA graphs.
// - Exact: a prompt's tokens do not depend on the slot it takes (the batch in reverse order gives
//   the rows reversed), and the engine's single-sequence path gives the alone engine's tokens.
// - Against each prompt alone: the batch's projections are GEMMs, alone they are GEMVs, so K/V may
//   differ in the last bf16 bit and a 4-bit group's (min, scale) with it; the first 32 tokens must
//   agree (by then every sequence has had a group quantized during its decode: the 1-token prompt's
//   first at length 24), and how many of the 48 agree is printed. (On the H100 all 48 did at 2 and 8
//   bits; at 4 bits a sequence parted after token 32.)
// - Memory: the codes of every slot hold the longest sequence's entries; kv_cache_bytes() counts them.
TEST(GpuKiviBatch, BatchedGreedyFollowsEachPromptAlone) {
  const auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  const ModelConfig& c = model->config;
  const std::vector<std::vector<int32_t>> prompts = batch_prompts(c);
  const int64_t new_tokens = 48, must_agree = 32;
  for (int bits : {2, 4, 8}) {
    KvQuantConfig q;
    q.bits = bits, q.group = 16, q.residual = 8;
    GpuEngineOptions single;
    single.capacity = 128, single.kv_quant = q;
    std::unique_ptr<GpuEngine> alone;
    try {
      alone = GpuEngine::create(*model, single);
    } catch (const Unsupported& e) {
      GTEST_SKIP() << e.what();
    }
    std::vector<std::vector<int32_t>> want;
    for (const auto& p : prompts) want.push_back(alone->generate_greedy(p, new_tokens, {}, nullptr));
    for (bool graphs : {true, false}) {
      GpuEngineOptions opt = single;
      opt.max_batch = 4, opt.use_graphs = graphs;
      auto engine = GpuEngine::create(*model, opt);
      GpuTimings t;
      const std::string what = str_cat("int", bits, graphs ? " with graphs" : " without graphs");
      const auto got = engine->generate_greedy_batch(prompts, new_tokens, {}, &t);
      EXPECT_EQ(t.decode_steps, new_tokens - 1) << what;
      ASSERT_EQ(got.size(), prompts.size()) << what;
      for (size_t s = 0; s < prompts.size(); ++s) {
        ASSERT_EQ(got[s].size(), size_t(new_tokens)) << what << " sequence " << s;
        size_t same = 0;
        while (same < got[s].size() && got[s][same] == want[s][same]) ++same;
        std::printf("kivi batch %s: prompt of %zu tokens agrees with it alone for %zu of %lld tokens\n", what.c_str(),
                    prompts[s].size(), same, static_cast<long long>(new_tokens));
        EXPECT_GE(same, size_t(must_agree)) << what << " sequence " << s;
      }
      // 4 slots x kv_heads x the longest sequence's quantized entries (60 + 47 = 107 positions),
      // codes and fp16 (min, scale) of K and V, plus each slot's bf16 ring, in every layer.
      const int64_t hd = c.head_dim, held = q.quantized_length(60 + new_tokens - 1);
      const int64_t ring = std::min<int64_t>(q.residual + q.group + std::min<int64_t>(opt.prefill_chunk, 128), 128);
      const int64_t per_head = gpu_test::kivi_code_bytes(q, hd, held) + 2 * ring * hd * 2;
      EXPECT_EQ(engine->kv_cache_bytes(), c.num_kv_layers() * 4 * c.num_kv_heads * per_head) << what;
      const std::vector<std::vector<int32_t>> reversed(prompts.rbegin(), prompts.rend());
      EXPECT_EQ(engine->generate_greedy_batch(reversed, new_tokens, {}, nullptr),
                (std::vector<std::vector<int32_t>>(got.rbegin(), got.rend())))
          << what;
      EXPECT_EQ(engine->generate_greedy(prompts[2], new_tokens, {}, nullptr), want[2]) << what;
    }
  }
}

// Batched decode over paged KIVI KV (blocks of 16; prefill chunks of 32, so that each slot's bf16
// ring of 8 + 16 + 32 rows, rounded up to 64, wraps): the tokens of the contiguous engine exactly,
// with and without graphs. In use: the codes (every slot holds the longest sequence's) and, per
// slot, the blocks of min(its reserved positions, 64) ring rows.
TEST(GpuKiviBatch, PagedRingGivesTheContiguousTokens) {
  const auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  const ModelConfig& c = model->config;
  const std::vector<std::vector<int32_t>> prompts = batch_prompts(c);
  const int64_t new_tokens = 48, block = 16, ring = 64;
  for (int bits : {4, 8}) {
    KvQuantConfig q;
    q.bits = bits, q.group = 16, q.residual = 8;
    for (bool graphs : {true, false}) {
      GpuEngineOptions opt;
      opt.capacity = 128, opt.prefill_chunk = 32, opt.kv_quant = q, opt.max_batch = 4, opt.use_graphs = graphs;
      std::unique_ptr<GpuEngine> contiguous;
      try {
        contiguous = GpuEngine::create(*model, opt);
      } catch (const Unsupported& e) {
        GTEST_SKIP() << e.what();
      }
      const auto want = contiguous->generate_greedy_batch(prompts, new_tokens, {}, nullptr);
      opt.kv_block_size = block;
      auto paged = GpuEngine::create(*model, opt);
      const std::string what = str_cat("int", bits, graphs ? " with graphs" : " without graphs");
      EXPECT_EQ(paged->generate_greedy_batch(prompts, new_tokens, {}, nullptr), want) << what;
      const int64_t hd = c.head_dim, held = q.quantized_length(60 + new_tokens - 1);
      const int64_t per_head_codes = gpu_test::kivi_code_bytes(q, hd, held);
      int64_t blocks = 0;
      for (const auto& p : prompts) blocks += (std::min<int64_t>(int64_t(p.size()) + new_tokens - 1, ring) + block - 1) / block;
      const int64_t block_bytes = 2 * c.num_kv_layers() * c.num_kv_heads * block * hd * 2;
      EXPECT_EQ(paged->kv_cache_bytes_in_use(),
                c.num_kv_layers() * 4 * c.num_kv_heads * per_head_codes + blocks * block_bytes)
          << what;
      std::printf("kivi batch paged %s: %lld blocks in use, %lld bytes (contiguous engine: %lld)\n", what.c_str(),
                  (long long)blocks, (long long)paged->kv_cache_bytes_in_use(), (long long)contiguous->kv_cache_bytes());
    }
  }
}

}  // namespace
}  // namespace ctx::cuda
