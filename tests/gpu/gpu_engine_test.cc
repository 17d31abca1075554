// The CUDA forward pass (core/cuda/gpu_engine.h) against HF transformers' reference logits and greedy
// tokens of every HF fixture and the real stories260K model; label "gpu" (runs on the device machine).
// Tolerance: bf16 weights and activations with float32 accumulation give ||gpu - ref|| / ||ref|| of
// 3e-3 to 1e-2 on these models; the test asserts <= 2e-2 (METHOD: bf16 operands land between 1e-3
// and 1e-2) and prints every measured error. Greedy tokens: bf16 rounding may flip a near tie of
// these random models, so where the GPU's token first differs from transformers', the float32 CPU
// engine's logits there must show a near tie: the two tokens' logits within 2% of the largest logit.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <string>

#include "core/cuda/gpu_engine.h"
#include "core/cuda/kernel_trace.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "core/quant/quantize_model.h"
#include "plugins/register_all.h"
#include "tests/gpu/gpu_engine_support.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda {
namespace {

using test::relative_l2;

class GpuFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuFixture, LogitsAndGreedyTokensMatchTransformers) {
  const std::string dir = test::shared_path("fixtures/hf/" + GetParam());
  const auto model = load_model(dir);
  const auto ref = test::load_hf_reference(dir);
  GpuEngineOptions opt;
  opt.capacity = 256, opt.prefill_chunk = 64;
  auto engine = GpuEngine::create(*model, opt);
  for (int64_t b = 0; b < ref.batch; ++b) {
    const std::span<const int32_t> ids(ref.input_ids.data() + b * ref.prompt_len, size_t(ref.prompt_len));
    engine->reset();
    const auto logits = engine->forward(ids, true);
    const float* expected = ref.logits.data() + b * ref.prompt_len * ref.vocab;
    const double err = relative_l2(logits.data(), expected, logits.size());
    std::printf("%s[%lld]: ||gpu - transformers|| / ||transformers|| = %.3g\n", GetParam().c_str(), (long long)b, err);
    EXPECT_LE(err, 2e-2);
    // Token by token through the cache gives the same logits as the whole prompt at once.
    engine->reset();
    std::vector<float> stepwise;
    for (int32_t id : ids) {
      const auto row = engine->forward(std::span<const int32_t>(&id, 1), false);
      stepwise.insert(stepwise.end(), row.begin(), row.end());
    }
    EXPECT_LE(relative_l2(stepwise.data(), logits.data(), logits.size()), 1e-2);
    // Greedy tokens (graph replays) against transformers' greedy continuation.
    GpuTimings tm;
    const int64_t new_tokens = ref.generated_len - ref.prompt_len;
    const auto gen = engine->generate_greedy(ids, new_tokens, {}, &tm);
    ASSERT_EQ(int64_t(gen.size()), new_tokens);
    const int32_t* ref_seq = ref.generated.data() + b * ref.generated_len;
    int64_t agree = 0;
    while (agree < new_tokens && gen[size_t(agree)] == ref_seq[ref.prompt_len + agree]) ++agree;
    std::printf("%s[%lld]: greedy tokens agree for %lld of %lld\n", GetParam().c_str(), (long long)b, (long long)agree,
                (long long)new_tokens);
    if (agree < new_tokens) {
      Transformer cpu(*model, builtin_catalog().attention.create("sdpa"));
      KvCache cache = cpu.new_cache();
      const std::vector<int32_t> context(ref_seq, ref_seq + ref.prompt_len + agree);
      SequenceStep step{&cache, context, -1};
      const auto row = cpu.forward(std::span<const SequenceStep>(&step, 1));
      float top = 0;
      for (float v : row) top = std::max(top, std::fabs(v));
      const float gap = row[size_t(ref_seq[ref.prompt_len + agree])] - row[size_t(gen[size_t(agree)])];
      std::printf("%s[%lld]: at the first difference the float32 logits differ by %.4g (%.2g%% of the largest)\n",
                  GetParam().c_str(), (long long)b, gap, 100 * gap / top);
      EXPECT_LE(std::fabs(gap), 0.02f * top) << "the GPU left the reference at a token that was no near tie";
    }
    // Without graphs: identical tokens.
    GpuEngineOptions plain = opt;
    plain.use_graphs = false;
    auto engine2 = GpuEngine::create(*model, plain);
    EXPECT_EQ(engine2->generate_greedy(ids, new_tokens, {}, nullptr), gen);
  }
  const auto mem = engine->memory();
  EXPECT_GE(mem.current_bytes, engine->weight_bytes());
  EXPECT_GE(mem.peak_bytes, mem.current_bytes);
  EXPECT_GE(mem.reserved_bytes, mem.current_bytes);
}

INSTANTIATE_TEST_SUITE_P(HfFixtures, GpuFixture,
                         ::testing::Values("llama", "llama_bf16", "llama_tied", "llama_mha", "mistral_swa", "qwen2", "qwen3",
                                           "granite", "stories260k_hf", "granite_hybrid"));

// A hybrid model (Mamba-2 and attention layers, NoPE, two B/C groups, Mamba chunks of 32) with a
// prompt that spans several engine prefill chunks (48 tokens: Mamba chunks of 32 and 16 inside each)
// on the GPU: the prompt's first part prefilled, the rest decoded one token at a time (the decode
// path: GEMV + recurrent step), must give the teacher-forced logits of one forward over the whole
// prompt (the chunked scan) within 1e-2 relative L2 (bf16 GEMM vs GEMV rounding, as for the
// fixtures' stepwise check); both within 5e-2 of the float32 CPU engine (printed). reset() zeroes
// the recurrent state: a second run repeats the first; graph replays give the tokens of plain launches.
TEST(GpuHybrid, PrefillThenDecodeEqualsTeacherForced) {
  const std::string path = ::testing::TempDir() + "gpu_hybrid.json";
  {
    std::ofstream f(path);
    f << R"({"architectures": ["GraniteMoeHybridForCausalLM"], "model_type": "granitemoehybrid", "hidden_size": 128,
            "num_hidden_layers": 4, "layer_types": ["mamba", "attention", "mamba", "mamba"], "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 256, "shared_intermediate_size": 256, "num_local_experts": 0,
            "num_experts_per_tok": 0, "vocab_size": 300, "tie_word_embeddings": true, "mamba_d_state": 64,
            "mamba_n_groups": 2, "mamba_n_heads": 8, "mamba_d_head": 32, "mamba_expand": 2, "mamba_d_conv": 4,
            "mamba_chunk_size": 32, "mamba_conv_bias": true, "mamba_proj_bias": false, "attention_bias": false,
            "max_position_embeddings": 4096, "position_embedding_type": "nope", "rms_norm_eps": 1e-5,
            "embedding_multiplier": 12.0, "attention_multiplier": 0.03, "residual_multiplier": 0.22,
            "logits_scaling": 6.0, "hidden_act": "silu", "initializer_range": 0.05})";
  }
  const auto model = load_model("random:" + path + ":3");
  const int64_t vocab = 300, len = 150, split = 131;
  const std::vector<int32_t> ids = gpu_test::spread_ids(len, vocab, 53, 7);
  const std::vector<float> expected = gpu_test::cpu_prompt_logits(*model, "sdpa", ids);

  GpuEngineOptions opt;
  opt.capacity = 192, opt.prefill_chunk = 48;
  auto engine = GpuEngine::create(*model, opt);
  const auto teacher = engine->forward(ids, true);
  engine->reset();
  auto got = engine->forward(std::span<const int32_t>(ids.data(), size_t(split)), true);
  for (int64_t t = split; t < len; ++t) {
    const auto row = engine->forward(std::span<const int32_t>(&ids[size_t(t)], 1), false);
    got.insert(got.end(), row.begin(), row.end());
  }
  const double between = relative_l2(got.data(), teacher.data(), got.size());
  const double teacher_err = relative_l2(teacher.data(), expected.data(), teacher.size());
  const double decode_err = relative_l2(got.data() + split * vocab, expected.data() + split * vocab, (len - split) * vocab);
  std::printf("hybrid: prefill+decode vs teacher-forced %.3g; vs float32 cpu: teacher-forced %.3g, decoded rows %.3g\n",
              between, teacher_err, decode_err);
  EXPECT_LE(between, 1e-2);
  EXPECT_LE(teacher_err, 5e-2);
  EXPECT_LE(decode_err, 5e-2);
  // reset() zeroes the recurrent state: the same prompt again gives the same logits.
  engine->reset();
  const auto again = engine->forward(ids, true);
  EXPECT_LE(relative_l2(again.data(), teacher.data(), again.size()), 1e-6);
  // Graph replays advance the state like plain launches.
  GpuEngineOptions plain = opt;
  plain.use_graphs = false;
  const std::span<const int32_t> prompt(ids.data(), size_t(split));
  const auto with_graphs = engine->generate_greedy(prompt, 12, {}, nullptr);
  EXPECT_EQ(GpuEngine::create(*model, plain)->generate_greedy(prompt, 12, {}, nullptr), with_graphs);
  // The recurrent state is counted with the KV cache: 3 Mamba-2 layers of conv (512 x 3) + SSM
  // (8 x 32 x 64) floats, and K/V of the one attention layer.
  const int64_t recurrent = 3 * (512 * 3 + 8 * 32 * 64) * 4, kv = 2 * 2 * 192 * 32 * 2;
  EXPECT_EQ(engine->kv_cache_bytes(), recurrent + kv);
}

// Head dims 64/128/256 take the vectorised attention kernel (16-byte loads, several keys per load),
// others the generic one. On random models with weights large enough for peaked attention (so that a
// wrong softmax shows; bf16 error against float32 is then 3-10%, not the fixtures' 1%) and a prompt
// long enough for several split-KV chunks, the vectorised kernel must agree with the generic one run
// on the same bf16 inputs, and be as close to the float32 CPU engine: the whole prompt at once, then
// the last tokens one by one through the cache.
class GpuHeadDim : public ::testing::TestWithParam<int> {};

TEST_P(GpuHeadDim, VectorisedAttentionMatchesTheGenericKernel) {
  const int hd = GetParam();
  const std::string path = ::testing::TempDir() + "gpu_head_dim_" + std::to_string(hd) + ".json";
  {
    std::ofstream f(path);
    f << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": )" << 4 * hd
      << R"(, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": )" << hd << R"(, "vocab_size": 300, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "initializer_range": 0.25, "tie_word_embeddings": false})";
  }
  const auto model = load_model("random:" + path + ":7");
  const std::vector<int32_t> ids = gpu_test::token_ids(300, 300);
  const std::vector<float> expected = gpu_test::cpu_prompt_logits(*model, "sdpa", ids);
  // Logits of the whole prompt, then of the last 8 tokens decoded one by one.
  auto run = [&](bool vectorized) {
    GpuEngineOptions opt;
    opt.capacity = 320;  // 5 split-KV chunks in decode
    opt.vectorized_attention = vectorized;
    auto engine = GpuEngine::create(*model, opt);
    auto whole = engine->forward(ids, true);
    engine->reset();
    const size_t head = ids.size() - 8;
    engine->forward(std::span<const int32_t>(ids.data(), head), false);
    std::vector<float> steps;
    for (size_t i = head; i < ids.size(); ++i) {
      const auto row = engine->forward(std::span<const int32_t>(&ids[i], 1), false);
      steps.insert(steps.end(), row.begin(), row.end());
    }
    return std::make_pair(whole, steps);
  };
  const auto [wide, wide_steps] = run(true);
  const auto [generic, generic_steps] = run(false);
  const float* expected_steps = expected.data() + (ids.size() - 8) * 300;
  const double wide_err = relative_l2(wide.data(), expected.data(), wide.size());
  const double generic_err = relative_l2(generic.data(), expected.data(), generic.size());
  const double wide_step_err = relative_l2(wide_steps.data(), expected_steps, wide_steps.size());
  const double generic_step_err = relative_l2(generic_steps.data(), expected_steps, generic_steps.size());
  const double between = relative_l2(wide.data(), generic.data(), wide.size());
  const double between_steps = relative_l2(wide_steps.data(), generic_steps.data(), wide_steps.size());
  std::printf("head_dim %d vs cpu: prefill vectorised %.3g generic %.3g, decode vectorised %.3g generic %.3g; "
              "vectorised vs generic: prefill %.3g decode %.3g\n",
              hd, wide_err, generic_err, wide_step_err, generic_step_err, between, between_steps);
  EXPECT_LE(wide_err, 1.25 * generic_err + 1e-3);
  EXPECT_LE(wide_step_err, 1.25 * generic_step_err + 1e-3);
  EXPECT_LE(between, std::max(0.75 * generic_err, 0.02));
  EXPECT_LE(between_steps, std::max(0.75 * generic_step_err, 0.02));
  EXPECT_LE(generic_err, 0.15);  // bf16 on this model: about 0.05-0.1
}

INSTANTIATE_TEST_SUITE_P(HeadDims, GpuHeadDim, ::testing::Values(64, 128, 256));

// Paged prefill on the flash kernels (issue 7's `paged` backend): chunks of >= 64 tokens read K/V
// through the block table in the tensor-core kernels (wgmma on Hopper, the contiguous cache there
// taking the TMA kernel; mma.sync elsewhere), so paged logits are no longer the contiguous ones bit
// for bit (gpu_batch_test's check runs chunks of 48, on the split-KV kernel both ways) but within
// bf16 rounding of them. On random models with peaked attention (as GpuHeadDim: a wrong key row
// shows), head_dim 64 and 128, GQA 4:2, with and without a sliding window cutting the tiles, a
// 300-token prompt prefilled whole (one flash launch) and in chunks of 96 (flash launches after
// cached keys, a 12-token tail on split-KV), then 6 decode steps: for block sizes 8, 16 and 128
// (tiles spanning 8, 4 and part of one block, blocks of the pool handed out as the cache grows),
// paged within 1.25x the contiguous run's error against the float32 CPU engine, and within
// max(0.75 x that error, 0.02) of the contiguous logits.
struct PagedPrefillCase {
  int hd;
  int64_t window;
};

void PrintTo(const PagedPrefillCase& c, std::ostream* os) { *os << "head_dim " << c.hd << " window " << c.window; }

class GpuPagedPrefill : public ::testing::TestWithParam<PagedPrefillCase> {};

TEST_P(GpuPagedPrefill, FlashPrefillThroughTheBlockTableMatchesContiguous) {
  const auto [hd, window] = GetParam();
  const std::string path =
      ::testing::TempDir() + "gpu_paged_prefill_" + std::to_string(hd) + "_" + std::to_string(window) + ".json";
  {
    std::ofstream f(path);
    f << R"({"architectures": [")" << (window > 0 ? "MistralForCausalLM" : "LlamaForCausalLM")
      << R"("], "model_type": ")" << (window > 0 ? "mistral" : "llama") << R"(", "hidden_size": )" << 4 * hd
      << R"(, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "head_dim": )" << hd << R"(, "vocab_size": 300, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "sliding_window": )" << window << R"(, "initializer_range": 0.25, "tie_word_embeddings": false})";
  }
  const auto model = load_model("random:" + path + ":11");
  try {
    GpuEngine::create(*model, {});
  } catch (const Unsupported& e) {
    GTEST_SKIP() << e.what();
  }
  const int64_t vocab = 300, len = 306, prompt = 300;
  const std::vector<int32_t> ids = gpu_test::spread_ids(len, vocab, 41, 5);
  const std::vector<float> expected = gpu_test::cpu_prompt_logits(*model, "sdpa", ids);
  // The prompt's logits, then those of the last tokens decoded one by one.
  auto run = [&](int64_t block_size, int64_t chunk) {
    GpuEngineOptions opt;
    opt.capacity = 320, opt.prefill_chunk = chunk, opt.kv_block_size = block_size;
    auto engine = GpuEngine::create(*model, opt);
    auto logits = engine->forward(std::span<const int32_t>(ids.data(), size_t(prompt)), true);
    for (int64_t t = prompt; t < len; ++t) {
      const auto row = engine->forward(std::span<const int32_t>(&ids[size_t(t)], 1), false);
      logits.insert(logits.end(), row.begin(), row.end());
    }
    return logits;
  };
  for (int64_t chunk : {512, 96}) {
    const auto contiguous = run(0, chunk);
    const double contiguous_err = relative_l2(contiguous.data(), expected.data(), contiguous.size());
    EXPECT_LE(contiguous_err, 0.15) << "contiguous, chunk " << chunk;  // bf16 on this model: about 0.05-0.1
    for (int64_t bs : {8, 16, 128}) {
      const auto paged = run(bs, chunk);
      ASSERT_EQ(paged.size(), size_t(len * vocab));
      const double err = relative_l2(paged.data(), expected.data(), paged.size());
      const double between = relative_l2(paged.data(), contiguous.data(), paged.size());
      const double decode_between = relative_l2(paged.data() + prompt * vocab, contiguous.data() + prompt * vocab,
                                                size_t((len - prompt) * vocab));
      std::printf("head_dim %d window %lld chunk %lld block %lld: vs cpu paged %.3g contiguous %.3g; "
                  "paged vs contiguous %.3g (decode rows %.3g)\n",
                  hd, (long long)window, (long long)chunk, (long long)bs, err, contiguous_err, between, decode_between);
      EXPECT_LE(err, 1.25 * contiguous_err + 1e-3) << "block " << bs << " chunk " << chunk;
      EXPECT_LE(between, std::max(0.75 * contiguous_err, 0.02)) << "block " << bs << " chunk " << chunk;
      EXPECT_LE(decode_between, std::max(0.75 * contiguous_err, 0.02)) << "block " << bs << " chunk " << chunk;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuPagedPrefill,
                         ::testing::Values(PagedPrefillCase{64, 0}, PagedPrefillCase{128, 0}, PagedPrefillCase{128, 100}),
                         [](const auto& info) {
                           return "hd" + std::to_string(info.param.hd) + "_win" + std::to_string(info.param.window);
                         });

TEST(GpuEngine, StopIdsEndGenerationAtTheirFirstOccurrence) {
  const auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  auto engine = GpuEngine::create(*model, {});
  const std::vector<int32_t> bos{1};
  const auto full = engine->generate_greedy(bos, 40, {}, nullptr);
  ASSERT_EQ(full.size(), 40u);
  for (size_t at : {size_t(0), size_t(5), size_t(13), size_t(39)}) {
    const int32_t stop = full[at];
    const size_t first = size_t(std::find(full.begin(), full.end(), stop) - full.begin());
    const auto cut = engine->generate_greedy(bos, 40, {stop}, nullptr);
    EXPECT_EQ(cut, std::vector<int32_t>(full.begin(), full.begin() + int64_t(first) + 1)) << "stop id " << stop;
  }
}

TEST(GpuEngine, DecodeProfileCoversEveryStageAndAppendsOneToken) {
  const auto model = load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  GpuEngineOptions opt;
  opt.capacity = 64;
  auto engine = GpuEngine::create(*model, opt);
  EXPECT_THROW(engine->profile_decode_step(), Error);  // nothing cached yet
  const std::vector<int32_t> prompt{1, 403, 407, 261};
  engine->forward(prompt, false);
  // RoPE and the KV write in a launch of their own, then (the default) inside the attention launch.
  for (bool fused : {false, true}) {
    engine->set_fused_rope(fused ? 2 : 0);
    const auto stages = engine->profile_decode_step();
    EXPECT_EQ(engine->length(), fused ? 6 : 5);
    std::vector<std::string> names;
    for (const auto& [name, ms] : stages) {
      names.push_back(name);
      EXPECT_GE(ms, 0.0) << name;
    }
    const std::vector<std::string> attention =
        fused ? std::vector<std::string>{"rope + kv write + attention"}
              : std::vector<std::string>{"q/k norm + rope + kv write", "attention"};
    std::vector<std::string> want{"norm + qkv"};
    want.insert(want.end(), attention.begin(), attention.end());
    for (const char* s : {"o_proj + residual", "norm + gate_up + swiglu", "down_proj + residual", "final norm",
                          "classifier", "argmax + step"})
      want.push_back(s);
    EXPECT_EQ(names, want);
  }
}

TEST(GpuEngine, OutOfMemoryIsReportedNotACrash) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  GpuEngineOptions opt;
  opt.capacity = int64_t(1) << 36;  // a KV cache of terabytes
  try {
    GpuEngine::create(*model, opt);
    FAIL() << "expected CudaOutOfMemory";
  } catch (const CudaOutOfMemory& e) {
    EXPECT_GT(e.requested_bytes, e.free_bytes);
    EXPECT_NE(std::string(e.what()).find("CUDA out of memory"), std::string::npos) << e.what();
  }
  // The engine is usable afterwards.
  auto ok = GpuEngine::create(*model, {});
  EXPECT_EQ(ok->generate_greedy(std::vector<int32_t>{1, 2, 3}, 4, {}, nullptr).size(), 4u);
  const auto held = ok->memory();
  EXPECT_GE(held.peak_bytes, ok->weight_bytes() + ok->kv_cache_bytes());
  // A memory limit below what the engine needs fails the same way; one above it does not.
  GpuEngineOptions small;
  small.memory_limit_bytes = held.peak_bytes / 2;
  try {
    GpuEngine::create(*model, small);
    FAIL() << "expected CudaOutOfMemory under a limit of " << small.memory_limit_bytes;
  } catch (const CudaOutOfMemory& e) {
    EXPECT_NE(std::string(e.what()).find("memory limit"), std::string::npos) << e.what();
  }
  GpuEngineOptions roomy;
  roomy.memory_limit_bytes = held.reserved_bytes + (int64_t(64) << 20);
  auto fits = GpuEngine::create(*model, roomy);
  EXPECT_EQ(fits->generate_greedy(std::vector<int32_t>{1, 2, 3}, 4, {}, nullptr),
            ok->generate_greedy(std::vector<int32_t>{1, 2, 3}, 4, {}, nullptr));
  fits->reset_peak_memory();
  EXPECT_EQ(fits->memory().peak_bytes, fits->memory().current_bytes);
}

// RoPE and the KV write fused into the decode attention launch (GpuEngineOptions::fused_rope 2: every
// pass) give the separate launches' decode logits and greedy tokens bit for bit. Fixtures with GQA,
// MHA, a sliding window and llama2.c's interleaved pairs (head_dim 16 and 8: the generic pass); random
// models with head_dim 128 and 64, MHA (the wide pass, as the Llama-2-7B shape); GQA at head_dim 128
// (the tensor-core pass, its K/V loads through L2), 4 query heads per KV head (one block per KV head
// and chunk) and 8 (two blocks, both writing the new key's row). Chunks of at least 8 keys: several
// split-KV chunks, the new key in the last. Suffixes: "+paged", a paged cache of blocks of 16 (the new key's row
// through the block table); "+chunk64", chunks of at least 64 keys (two steps of each warp's wide pass,
// both pulled into L1 before pdl_wait); "+prefetch", the wide pass's key prefetch.
class GpuFusedRope : public ::testing::TestWithParam<std::string> {};

// A case "model+suffix+...": whether it names the suffix, and its test name ('+' as '_').
bool has_suffix(const std::string& param, const std::string& suffix) {
  return param.find("+" + suffix) != std::string::npos;
}
std::string suffixed_case_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (ch == '+') ch = '_';
  return n;
}

std::unique_ptr<Model> fused_rope_model(const std::string& name) {
  if (name == "stories260k") return load_model(test::shared_path("fixtures/stories260k/stories260K.bin"));
  if (name.rfind("random", 0) != 0) return load_model(test::shared_path("fixtures/hf/" + name));
  const int hd = name == "random_mha_64" ? 64 : 128, heads = name.rfind("random_gqa", 0) == 0 ? 8 : 4,
            kv = name == "random_gqa_128" ? 2 : name == "random_gqa8_128" ? 1 : heads;
  const std::string path = ::testing::TempDir() + "gpu_fused_rope_" + name + ".json";
  {
    std::ofstream f(path);
    f << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": )" << 512
      << R"(, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": )" << heads
      << R"(, "num_key_value_heads": )" << kv << R"(, "head_dim": )" << hd
      << R"(, "vocab_size": 300, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "initializer_range": 0.25,
            "tie_word_embeddings": false})";
  }
  return load_model("random:" + path + ":5");
}

// One case "model+suffix+..." decoded on one engine with a switch off, then on (set(engine, on)):
// decode_trace's 16 teacher-forced logits rows and 40 greedy tokens each. The model is
// fused_rope_model(name); suffixes: "q4_0" / "int8" quantize its weights, "paged" a paged cache of
// blocks of 16, "prefetch" the wide pass's key prefetch, "chunk64" / "min0" chunks of at least 64 / any
// number of keys (else 8).
struct CaseRuns {
  int64_t vocab;
  std::array<gpu_test::DecodeTrace, 2> runs;  // off, on
};
template <class Set>
CaseRuns decode_case_both_ways(const std::string& param, Set set) {
  const auto has = [&](const std::string& suffix) { return has_suffix(param, suffix); };
  const auto model = fused_rope_model(param.substr(0, param.find('+')));
  for (const char* spec : {"q4_0", "int8"})
    if (has(spec)) quantize_model_weights(model->weights, builtin_catalog().quant, spec);
  GpuEngineOptions opt;
  opt.capacity = 200, opt.prefill_chunk = 64, opt.decode_min_chunk = has("chunk64") ? 64 : has("min0") ? 0 : 8;
  if (has("paged")) opt.kv_block_size = 16;
  if (has("prefetch")) opt.attention_prefetch = 1;
  auto engine = GpuEngine::create(*model, opt);
  const std::vector<int32_t> ids = gpu_test::token_ids(48, model->config.vocab_size);
  CaseRuns out{model->config.vocab_size, {}};
  for (bool on : {false, true}) {
    set(*engine, on);
    out.runs[on] = gpu_test::decode_trace(*engine, ids, 32, 24, 40);
  }
  return out;
}

TEST_P(GpuFusedRope, DecodesBitForBitAsTheSeparateLaunch) {
  const auto [vocab, runs] = decode_case_both_ways(GetParam(), [](GpuEngine& engine, bool fused) {
    engine.set_fused_rope(fused ? 2 : 0);  // 2: the tensor-core pass too
  });
  ASSERT_EQ(runs[0].logits.size(), size_t(16 * vocab));
  EXPECT_EQ(std::memcmp(runs[0].logits.data(), runs[1].logits.data(), runs[0].logits.size() * 4), 0)
      << GetParam() << ": decode logits with RoPE in the attention launch";
  EXPECT_EQ(runs[1].tokens, runs[0].tokens) << GetParam() << ": greedy tokens with RoPE in the attention launch";
  EXPECT_GT(std::set<int32_t>(runs[0].tokens.begin(), runs[0].tokens.end()).size(), size_t(1)) << "a degenerate model";
}

INSTANTIATE_TEST_SUITE_P(Models, GpuFusedRope,
                         ::testing::Values("llama", "llama_mha", "mistral_swa", "stories260k", "random_mha_128",
                                           "random_mha_64", "random_gqa_128", "random_gqa8_128", "llama+paged",
                                           "random_mha_128+paged", "random_gqa_128+paged", "random_mha_128+chunk64",
                                           "random_mha_128+prefetch", "random_mha_128+prefetch+chunk64",
                                           "random_mha_128+paged+prefetch+chunk64"),
                         suffixed_case_name);

// Decode attention beside the qkv GEMV (GpuEngineOptions::attention_overlap): each attention block
// reads the rows it needs as the GEMV stores them (unwritten elements hold a NaN pattern, which the
// last reader writes back); the new key is a split-KV chunk of its own. The GpuFusedRope models (MHA
// and GQA on both passes, a sliding window, paged, wider chunks, the key prefetch) with bf16 weights
// and, with the suffixes "+q4_0" and "+int8", the quantized GEMVs. Against the same engine without it:
// the chunks merge in another order, so the logits may differ in the last bits (relative L2 < 5e-3,
// worst < 2% of the largest logit), and the greedy tokens must be the same. A block that read a row
// the GEMV had not stored would compute with NaN, and one that read a row not written back to the
// pattern would read the previous layer's or step's projections: errors of the order of the logits.
class GpuAttentionOverlap : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuAttentionOverlap, DecodesAsWithoutIt) {
  const std::string param = GetParam();
  const auto [vocab, runs] =
      decode_case_both_ways(param, [](GpuEngine& engine, bool overlap) { engine.set_attention_overlap(overlap); });
  ASSERT_EQ(runs[0].logits.size(), size_t(16 * vocab));
  const double rel = test::relative_l2(runs[1].logits.data(), runs[0].logits.data(), runs[0].logits.size());
  const test::LogitDiff diff = test::compare(runs[1].logits.data(), runs[0].logits.data(), int64_t(runs[0].logits.size()));
  std::printf("%s: overlap vs not, relative L2 %.3g, worst %.3g of max |logit|\n", param.c_str(), rel, diff.relative());
  EXPECT_LT(rel, 5e-3) << param;
  EXPECT_LT(diff.relative(), 0.02) << param;
  EXPECT_EQ(runs[1].tokens, runs[0].tokens) << param << ": greedy tokens with attention beside the qkv GEMV";
  EXPECT_GT(std::set<int32_t>(runs[0].tokens.begin(), runs[0].tokens.end()).size(), size_t(1)) << "a degenerate model";
}

INSTANTIATE_TEST_SUITE_P(Models, GpuAttentionOverlap,
                         ::testing::Values("llama", "llama_mha", "mistral_swa", "stories260k", "random_mha_128",
                                           "random_mha_64", "random_gqa_128", "random_gqa8_128", "llama+paged",
                                           "random_mha_128+paged", "random_gqa_128+paged", "random_mha_128+chunk64",
                                           "random_mha_128+min0", "random_mha_128+prefetch+chunk64",
                                           "random_mha_128+q4_0", "random_gqa_128+q4_0", "random_mha_128+int8",
                                           "random_mha_128+paged+q4_0"),
                         suffixed_case_name);

// The llama fixture on an engine of capacity 64 whose decode graph a first greedy generation (7
// tokens after an 8-token prompt) has captured: the kernel trace tests' subject.
struct GraphedLlama {
  std::unique_ptr<Model> model;
  std::unique_ptr<GpuEngine> engine;
  std::vector<int32_t> prompt;
};
GraphedLlama llama_with_decode_graph() {
  GraphedLlama g{load_model(test::shared_path("fixtures/hf/llama")), nullptr, {1, 5, 9, 13, 17, 21, 25, 29}};
  GpuEngineOptions opt;
  opt.capacity = 64;
  g.engine = GpuEngine::create(*g.model, opt);
  g.engine->generate_greedy(g.prompt, 7, {}, nullptr);
  return g;
}

// attention_overlap engages: in the kernel trace (CUPTI) of a greedy generation on the llama fixture
// (GQA, RoPE fused in), each decode step's attention launches have one more split-KV chunk (the new
// key's) per block of query heads than without it, and the tokens are the same.
TEST(GpuAttentionOverlap, AttentionLaunchesCarryTheNewKeysChunk) {
  const auto [model, engine, prompt] = llama_with_decode_graph();
  std::array<int64_t, 2> blocks{};  // the attention launches' blocks per decode step, off and on
  std::array<std::vector<int32_t>, 2> tokens;
  for (bool on : {false, true}) {
    try {
      start_kernel_trace();
    } catch (const Unsupported& e) {
      GTEST_SKIP() << e.what();
    }
    engine->set_attention_overlap(on);  // the graph is captured again, with the trace on
    tokens[on] = engine->generate_greedy(prompt, 7, {}, nullptr);
    const auto steps = graph_launches(stop_kernel_trace());
    ASSERT_EQ(steps.size(), 6u);
    for (const KernelRecord& k : steps[0])
      if (k.name.find("attention_partial_kernel") != std::string::npos) blocks[on] += k.grid;
  }
  // Per launch: heads / g blocks (g query heads per block) times the chunks, one more chunk with it.
  const int64_t layers = model->config.num_layers, extra = blocks[1] - blocks[0];
  ASSERT_GT(blocks[0], 0);
  ASSERT_GT(extra, 0) << "no more attention blocks with the overlap on";
  EXPECT_EQ(extra % layers, 0) << extra;
  EXPECT_EQ(model->config.num_heads % (extra / layers), 0) << extra;
  EXPECT_EQ(blocks[0] % extra, 0) << "blocks " << blocks[0] << " without, " << blocks[1] << " with";
  EXPECT_EQ(tokens[1], tokens[0]);
}

// The kernel trace (kernel_trace.h, CUPTI) of a greedy generation on the llama fixture: each decode
// step is one graph launch of the same kernels (the argmax's too), every one of the fixture's layers
// launches its GEMVs in it, and the timeline's increments add up to each step's span.
TEST(GpuKernelTimeline, DecodeStepsAreGraphLaunchesOfTheSameKernels) {
  const auto [model, engine, prompt] = llama_with_decode_graph();
  try {
    start_kernel_trace();
  } catch (const Unsupported& e) {
    GTEST_SKIP() << e.what();
  }
  engine->set_fused_rope(2);  // the graph is captured again, with the trace on
  engine->generate_greedy(prompt, 7, {}, nullptr);
  const std::vector<KernelRecord> records = stop_kernel_trace();
  const auto steps = graph_launches(records);
  ASSERT_EQ(steps.size(), 6u) << records.size() << " kernels recorded";  // 7 tokens: the prompt's, then 6 replays
  EXPECT_GT(records.size(), 6 * steps[0].size()) << "the prompt's forward ran outside the graph";
  const StepTimeline t = summarize_steps(steps);
  double increments = 0, gemvs = 0;
  for (const TimelineKernel& k : t.kernels) {
    increments += k.increment_us;
    if (k.name.find("gemv") != std::string::npos) gemvs += k.launches;
    std::printf("%-90s %4.0f launches  %8.2f us  increment %8.2f us\n", k.name.c_str(), k.launches, k.duration_us,
                k.increment_us);
  }
  EXPECT_NEAR(increments, t.span_us, 1e-6 * t.span_us);
  EXPECT_GT(t.span_us, 0);
  EXPECT_GE(gemvs, double(4 * model->config.num_layers)) << "qkv, o, gate_up and down of every layer";
}

TEST(GpuEngine, BadTokensAreErrors) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  GpuEngineOptions opt;
  opt.capacity = 8;
  auto engine = GpuEngine::create(*model, opt);
  EXPECT_THROW(engine->forward(std::vector<int32_t>{1, 512}, false), Error);
  EXPECT_THROW(engine->forward(std::vector<int32_t>(9, 1), false), Error);
}

}  // namespace
}  // namespace ctx::cuda
