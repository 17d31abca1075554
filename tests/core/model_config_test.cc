// parse_hf_config on every fixture config and on the transformers 4.x spelling, its errors, RoPE
// frequencies (default, linear, llama3) against independently computed values, and Rope::apply.
#include "core/model/model_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <numbers>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/model/rope.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

using json = nlohmann::json;

std::string fixture_config_path(const std::string& name) { return test::shared_path("fixtures/hf/" + name + "/config.json"); }

ModelConfig parse_fixture(const std::string& name) {
  const std::string path = fixture_config_path(name);
  return parse_hf_config(read_file(path), path);
}

// The ctx::Error message of parse_hf_config(text), or "" when it parses.
std::string parse_error(const std::string& text) {
  try {
    parse_hf_config(text, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

json fixture_json(const std::string& name) { return json::parse(read_file(fixture_config_path(name))); }

// Expected values shared by the small fixtures (vocab 512, hidden 64, 2 layers, 4/2 heads).
void expect_small_shape(const ModelConfig& c, int64_t kv_heads) {
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 160);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, kv_heads);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.q_dim(), 64);
  EXPECT_EQ(c.kv_dim(), kv_heads * 16);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_EQ(c.rope.layout, RopeLayout::kRotateHalf);
  ASSERT_EQ(c.layer_window.size(), 2u);
}

void expect_plain(const ModelConfig& c) {
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.layer_window, (std::vector<int64_t>{0, 0}));
  EXPECT_DOUBLE_EQ(c.embedding_multiplier, 1.0);
  EXPECT_DOUBLE_EQ(c.attention_scale, 0.0);
  EXPECT_DOUBLE_EQ(c.residual_multiplier, 1.0);
  EXPECT_DOUBLE_EQ(c.logits_scaling, 1.0);
  EXPECT_DOUBLE_EQ(c.softmax_scale(), 0.25);  // 1 / sqrt(16)
}

TEST(HfConfig, Llama) {
  const ModelConfig c = parse_fixture("llama");
  EXPECT_EQ(c.model_type, "llama");
  expect_small_shape(c, 2);
  expect_plain(c);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.dtype, DType::F32);
  EXPECT_EQ(c.rope.inv_freq_dtype, DType::F32);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2}));
  // 2 layers x (q 64*64 + k,v 2*32*64 + o 64*64 + mlp 3*64*160 + 2 norms) + embed + lm_head + final norm.
  EXPECT_EQ(c.parameter_count(), 2 * (4096 + 4096 + 4096 + 30720 + 128) + 2 * 512 * 64 + 64);
}

TEST(HfConfig, LlamaBf16RoundsInvFreqToBf16) {
  const ModelConfig c = parse_fixture("llama_bf16");
  expect_small_shape(c, 2);
  expect_plain(c);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_EQ(c.rope.inv_freq_dtype, DType::BF16);
  Rope bf16(c.rope, c.head_dim);
  RopeConfig f32_cfg = c.rope;
  f32_cfg.inv_freq_dtype = DType::F32;
  Rope f32(f32_cfg, c.head_dim);
  bool any_differs = false;
  for (size_t i = 0; i < bf16.inv_freq().size(); ++i) {
    EXPECT_EQ(bf16.inv_freq()[i], bf16_to_f32(f32_to_bf16(f32.inv_freq()[i]))) << i;
    any_differs = any_differs || bf16.inv_freq()[i] != f32.inv_freq()[i];
  }
  EXPECT_TRUE(any_differs);
}

TEST(HfConfig, LlamaTied) {
  const ModelConfig c = parse_fixture("llama_tied");
  expect_small_shape(c, 2);
  expect_plain(c);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.parameter_count(), 2 * (4096 + 4096 + 4096 + 30720 + 128) + 512 * 64 + 64);
}

TEST(HfConfig, LlamaMha) {
  const ModelConfig c = parse_fixture("llama_mha");
  expect_small_shape(c, 4);
  expect_plain(c);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(HfConfig, MistralSlidingWindowOnEveryLayer) {
  const ModelConfig c = parse_fixture("mistral_swa");
  EXPECT_EQ(c.model_type, "mistral");
  expect_small_shape(c, 2);
  EXPECT_EQ(c.layer_window, (std::vector<int64_t>{8, 8}));
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_DOUBLE_EQ(c.rope.theta, 10000.0);
}

TEST(HfConfig, Qwen2HasQkvBias) {
  const ModelConfig c = parse_fixture("qwen2");
  EXPECT_EQ(c.model_type, "qwen2");
  expect_small_shape(c, 2);  // head_dim derived: 64 / 4
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.layer_window, (std::vector<int64_t>{0, 0}));  // use_sliding_window false
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_TRUE(c.eos_token_ids.empty());
}

TEST(HfConfig, Qwen3HasQkNorm) {
  const ModelConfig c = parse_fixture("qwen3");
  EXPECT_EQ(c.model_type, "qwen3");
  expect_small_shape(c, 2);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_EQ(c.layer_window, (std::vector<int64_t>{0, 0}));
  EXPECT_DOUBLE_EQ(c.rope.theta, 1e6);
}

TEST(HfConfig, GraniteMultipliers) {
  const ModelConfig c = parse_fixture("granite");
  EXPECT_EQ(c.model_type, "granite");
  expect_small_shape(c, 2);
  EXPECT_DOUBLE_EQ(c.embedding_multiplier, 12.0);
  EXPECT_DOUBLE_EQ(c.attention_scale, 0.03);
  EXPECT_DOUBLE_EQ(c.softmax_scale(), 0.03);
  EXPECT_DOUBLE_EQ(c.residual_multiplier, 0.22);
  EXPECT_DOUBLE_EQ(c.logits_scaling, 6.0);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(HfConfig, Stories260kHf) {
  const ModelConfig c = parse_fixture("stories260k_hf");
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.layer_window, std::vector<int64_t>(5, 0));
}

TEST(HfConfig, GraniteHybrid) {
  const ModelConfig c = parse_fixture("granite_hybrid");
  EXPECT_EQ(c.model_type, "granitemoehybrid");
  EXPECT_EQ(c.intermediate_size, 128);  // shared_intermediate_size, not the experts' intermediate_size
  ASSERT_EQ(c.layer_kinds.size(), 4u);
  EXPECT_EQ(c.layer_kind(0), LayerKind::kMamba2);
  EXPECT_EQ(c.layer_kind(1), LayerKind::kAttention);
  EXPECT_EQ(c.layer_kind(2), LayerKind::kMamba2);
  EXPECT_EQ(c.layer_kind(3), LayerKind::kAttention);
  EXPECT_TRUE(c.is_hybrid());
  EXPECT_EQ(c.num_kv_layers(), 2);
  EXPECT_EQ(c.num_mamba_layers(), 2);
  EXPECT_EQ(c.kv_layer(0), -1);
  EXPECT_EQ(c.kv_layer(1), 0);
  EXPECT_EQ(c.kv_layer(3), 1);
  EXPECT_EQ(c.mamba.num_heads, 4);
  EXPECT_EQ(c.mamba.head_dim, 32);
  EXPECT_EQ(c.mamba.state_size, 16);
  EXPECT_EQ(c.mamba.num_groups, 1);
  EXPECT_EQ(c.mamba.conv_kernel, 4);
  EXPECT_EQ(c.mamba.chunk_size, 256);
  EXPECT_TRUE(c.mamba.conv_bias);
  EXPECT_FALSE(c.mamba.proj_bias);
  EXPECT_EQ(c.mamba.dt_min, 0.0);
  EXPECT_EQ(c.mamba.dt_max, INFINITY);
  EXPECT_EQ(c.mamba.conv_dim(), 160);
  EXPECT_EQ(c.mamba.in_proj_dim(), 292);
  EXPECT_TRUE(c.use_rope);
  EXPECT_DOUBLE_EQ(c.embedding_multiplier, 12.0);
  EXPECT_DOUBLE_EQ(c.attention_scale, 0.03);
  EXPECT_DOUBLE_EQ(c.residual_multiplier, 0.22);
  EXPECT_DOUBLE_EQ(c.logits_scaling, 6.0);
  // Attention layers: q,k,v,o; Mamba-2: in_proj, out_proj, conv (+bias), dt_bias/A_log/D, norm;
  // every layer: shared MLP and two norms; embedding, lm_head, final norm.
  const int64_t attn = 64 * (64 + 32 + 32) + 64 * 64, mamba = 64 * 292 + 128 * 64 + 160 * 4 + 160 + 3 * 4 + 128;
  const int64_t mlp = 3 * 64 * 128 + 2 * 64;
  EXPECT_EQ(c.parameter_count(), 2 * attn + 2 * mamba + 4 * mlp + 2 * 512 * 64 + 64);
  // An attention-only model: every layer is a KV layer.
  const ModelConfig llama = parse_fixture("llama");
  EXPECT_FALSE(llama.is_hybrid());
  EXPECT_EQ(llama.num_kv_layers(), llama.num_layers);
  EXPECT_EQ(llama.kv_layer(1), 1);
}

TEST(HfConfig, GraniteHybridErrors) {
  const std::string path = fixture_config_path("granite_hybrid");
  const json base = json::parse(read_file(path));
  auto error_of = [&](const std::function<void(json&)>& edit) {
    json j = base;
    edit(j);
    try {
      parse_hf_config(j.dump(), path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string moe = error_of([](json& j) { j["num_local_experts"] = 8, j["num_experts_per_tok"] = 2; });
  EXPECT_NE(moe.find("mixture-of-experts granitemoehybrid is not supported yet"), std::string::npos) << moe;
  EXPECT_NE(moe.find(path), std::string::npos) << moe;
  const std::string unknown = error_of([](json& j) { j["layer_types"][2] = "sliding_attention"; });
  EXPECT_NE(unknown.find("layer_types[2]"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("\"sliding_attention\" is not a known layer type"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find(path), std::string::npos) << unknown;
  const std::string missing = error_of([](json& j) { j.erase("layer_types"); });
  EXPECT_NE(missing.find("missing required key 'layer_types'"), std::string::npos) << missing;
  const std::string shape = error_of([](json& j) { j["mamba_d_head"] = 16; });
  EXPECT_NE(shape.find("mamba_n_heads * mamba_d_head (4 * 16) must equal mamba_expand * hidden_size (2 * 64)"),
            std::string::npos)
      << shape;
  const std::string groups = error_of([](json& j) { j["mamba_n_groups"] = 3; });
  EXPECT_NE(groups.find("mamba_n_heads (4) must be a multiple of mamba_n_groups (3)"), std::string::npos) << groups;
  const std::string pos = error_of([](json& j) { j["position_embedding_type"] = "alibi"; });
  EXPECT_NE(pos.find("unsupported position_embedding_type 'alibi'"), std::string::npos) << pos;
  // "auto" head size and NoPE parse.
  json j = base;
  j["mamba_d_head"] = "auto";
  j["position_embedding_type"] = "nope";
  const ModelConfig c = parse_hf_config(j.dump(), path);
  EXPECT_EQ(c.mamba.head_dim, 32);
  EXPECT_FALSE(c.use_rope);
}

TEST(HfConfig, EveryFixtureConfigIsCovered) {
  const std::vector<std::string> covered = {"llama", "llama_bf16", "llama_tied", "llama_mha", "mistral_swa",
                                            "qwen2", "qwen3",      "granite",    "stories260k_hf", "granite_hybrid"};
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::shared_path("fixtures/hf"))) {
    if (!e.is_directory()) continue;
    ++n;
    EXPECT_NE(std::find(covered.begin(), covered.end(), e.path().filename().string()), covered.end())
        << e.path() << " has no config test";
  }
  EXPECT_EQ(n, int(covered.size()));
}

// ---- transformers 4.x spelling: top-level rope_theta / rope_scaling -------------------------------

// The llama fixture's config with `rope_parameters` replaced by the 4.x keys.
std::string v4_config(double theta, const json& rope_scaling) {
  json j = fixture_json("llama");
  j.erase("rope_parameters");
  j["rope_theta"] = theta;
  if (!rope_scaling.is_null()) j["rope_scaling"] = rope_scaling;
  return j.dump();
}

// The llama fixture's config with its `rope_parameters` replaced.
std::string v5_config(const json& rope_parameters) {
  json j = fixture_json("llama");
  j["rope_parameters"] = rope_parameters;
  return j.dump();
}

void expect_same_rope(const RopeConfig& a, const RopeConfig& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.theta, b.theta);
  EXPECT_EQ(a.factor, b.factor);
  EXPECT_EQ(a.low_freq_factor, b.low_freq_factor);
  EXPECT_EQ(a.high_freq_factor, b.high_freq_factor);
  EXPECT_EQ(a.original_max_position_embeddings, b.original_max_position_embeddings);
  EXPECT_EQ(a.layout, b.layout);
  EXPECT_EQ(a.inv_freq_dtype, b.inv_freq_dtype);
}

const json kLinear = {{"type", "linear"}, {"factor", 2}};
const json kLlama3 = {{"rope_type", "llama3"},
                      {"factor", 8},
                      {"low_freq_factor", 1},
                      {"high_freq_factor", 4},
                      {"original_max_position_embeddings", 8192}};

TEST(HfConfigV4, TopLevelRopeThetaWithoutScaling) {
  const ModelConfig c = parse_hf_config(v4_config(500000.0, nullptr), "v4.json");
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 1.0);
  expect_small_shape(c, 2);
}

TEST(HfConfigV4, LinearScaling) {
  const ModelConfig c = parse_hf_config(v4_config(500000.0, kLinear), "v4.json");
  EXPECT_EQ(c.rope.type, "linear");
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 2.0);
}

TEST(HfConfigV4, Llama3Scaling) {
  const ModelConfig c = parse_hf_config(v4_config(500000.0, kLlama3), "v4.json");
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c.rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
}

TEST(HfConfigV4, NullRopeScalingMeansDefault) {
  json j = json::parse(v4_config(20000.0, nullptr));
  j["rope_scaling"] = nullptr;
  const ModelConfig c = parse_hf_config(j.dump(), "v4.json");
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_DOUBLE_EQ(c.rope.theta, 20000.0);
}

TEST(HfConfigV4, BothSpellingsGiveTheSameRopeConfig) {
  {
    SCOPED_TRACE("default");
    expect_same_rope(parse_hf_config(v4_config(500000.0, nullptr), "v4").rope,
                     parse_hf_config(v5_config({{"rope_theta", 500000.0}, {"rope_type", "default"}}), "v5").rope);
  }
  {
    SCOPED_TRACE("linear");
    expect_same_rope(parse_hf_config(v4_config(500000.0, kLinear), "v4").rope,
                     parse_hf_config(v5_config({{"rope_theta", 500000.0}, {"rope_type", "linear"}, {"factor", 2.0}}), "v5").rope);
  }
  {
    SCOPED_TRACE("llama3");
    json p = kLlama3;
    p["rope_theta"] = 500000.0;
    const RopeConfig v4 = parse_hf_config(v4_config(500000.0, kLlama3), "v4").rope;
    const RopeConfig v5 = parse_hf_config(v5_config(p), "v5").rope;
    expect_same_rope(v4, v5);
    EXPECT_EQ(Rope(v4, 128).inv_freq(), Rope(v5, 128).inv_freq());
  }
}

// ---- RoPE inverse frequencies ---------------------------------------------------------------------

RopeConfig rope_config(const std::string& type, double theta, double factor = 1.0) {
  RopeConfig c;
  c.type = type;
  c.theta = theta;
  c.factor = factor;
  return c;
}

TEST(RopeFreq, DefaultMatchesClosedForm) {
  const Rope rope(rope_config("default", 10000.0), 128);
  ASSERT_EQ(rope.inv_freq().size(), 64u);
  for (int i = 0; i < 64; ++i) {
    const double expected = 1.0 / std::pow(10000.0, 2.0 * i / 128.0);
    EXPECT_NEAR(rope.inv_freq()[size_t(i)], expected, 2 * FLT_EPSILON * expected) << "i = " << i;
  }
  EXPECT_EQ(rope.inv_freq()[0], 1.0f);
}

TEST(RopeFreq, LinearDividesDefaultByFactor) {
  const Rope base(rope_config("default", 10000.0), 128);
  for (double factor : {2.0, 3.0, 8.0}) {
    const Rope lin(rope_config("linear", 10000.0, factor), 128);
    ASSERT_EQ(lin.inv_freq().size(), base.inv_freq().size());
    for (size_t i = 0; i < base.inv_freq().size(); ++i)
      EXPECT_FLOAT_EQ(lin.inv_freq()[i], float(base.inv_freq()[i] / factor)) << "factor " << factor << " i " << i;
  }
}

// HF `_compute_llama3_parameters`, written out in double: wavelengths longer than
// original / low_freq_factor are divided by `factor`, shorter than original / high_freq_factor kept,
// and in between interpolated with smooth = (original / wavelen - low) / (high - low).
enum class Band { kHigh, kMedium, kLow };

double llama3_inv_freq(int i, int head_dim, double theta, double factor, double low, double high, double original,
                       Band* band) {
  const double f = 1.0 / std::pow(theta, 2.0 * i / head_dim);
  const double wavelen = 2 * std::numbers::pi / f;
  if (wavelen < original / high) {
    *band = Band::kHigh;
    return f;
  }
  if (wavelen > original / low) {
    *band = Band::kLow;
    return f / factor;
  }
  *band = Band::kMedium;
  const double smooth = (original / wavelen - low) / (high - low);
  return (1 - smooth) * f / factor + smooth * f;
}

TEST(RopeFreq, Llama3MatchesIndependentComputation) {
  RopeConfig c = rope_config("llama3", 500000.0, 8.0);
  c.low_freq_factor = 1.0;
  c.high_freq_factor = 4.0;
  c.original_max_position_embeddings = 8192;
  const Rope rope(c, 128);
  const Rope plain(rope_config("default", 500000.0), 128);
  ASSERT_EQ(rope.inv_freq().size(), 64u);
  int n_high = 0, n_medium = 0, n_low = 0;
  for (int i = 0; i < 64; ++i) {
    Band band;
    const double expected = llama3_inv_freq(i, 128, 500000.0, 8.0, 1.0, 4.0, 8192.0, &band);
    const float got = rope.inv_freq()[size_t(i)];
    EXPECT_NEAR(got, expected, 4 * FLT_EPSILON * expected) << "i = " << i;
    const float unscaled = plain.inv_freq()[size_t(i)];
    switch (band) {
      case Band::kHigh:
        ++n_high;
        EXPECT_EQ(got, unscaled) << "high-frequency band is kept, i = " << i;
        break;
      case Band::kLow:
        ++n_low;
        EXPECT_FLOAT_EQ(got, unscaled / 8.0f) << "low-frequency band is divided by factor, i = " << i;
        break;
      case Band::kMedium:
        ++n_medium;
        EXPECT_LT(got, unscaled * (1 - 1e-3)) << i;
        EXPECT_GT(got, unscaled / 8.0f * (1 + 1e-3)) << i;
        break;
    }
  }
  // With these parameters: i <= 28 high, 29..34 medium, 35.. low.
  EXPECT_EQ(n_high, 29);
  EXPECT_EQ(n_medium, 6);
  EXPECT_EQ(n_low, 29);
  // Spot values in each band, from the closed forms.
  EXPECT_NEAR(rope.inv_freq()[0], 1.0, FLT_EPSILON);
  const double f31 = std::pow(500000.0, -62.0 / 128.0), s31 = (8192.0 * f31 / (2 * std::numbers::pi) - 1.0) / 3.0;
  EXPECT_NEAR(rope.inv_freq()[31], (1 - s31) * f31 / 8 + s31 * f31, 4 * FLT_EPSILON * f31);
  EXPECT_NEAR(rope.inv_freq()[63], std::pow(500000.0, -126.0 / 128.0) / 8, 4 * FLT_EPSILON * std::pow(500000.0, -126.0 / 128.0) / 8);
}

// ---- errors ------------------------------------------------------------------------------------------

std::string llama_with(const std::function<void(json&)>& edit) {
  json j = fixture_json("llama");
  edit(j);
  return j.dump();
}

TEST(HfConfigErrors, UnknownModelTypeListsSupportedTypes) {
  const std::string msg = parse_error(llama_with([](json& j) { j["model_type"] = "gpt2"; }));
  EXPECT_NE(msg.find("model_type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'gpt2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  for (const char* t : {"llama", "mistral", "qwen2", "qwen3", "granite", "granitemoehybrid"}) EXPECT_NE(msg.find(t), std::string::npos) << t << ": " << msg;
  EXPECT_EQ(supported_model_types(), "granite, granitemoehybrid, llama, mistral, qwen2, qwen3");
}

TEST(HfConfigErrors, MissingModelType) {
  const std::string msg = parse_error(llama_with([](json& j) { j.erase("model_type"); }));
  EXPECT_NE(msg.find("model_type"), std::string::npos) << msg;
}

TEST(HfConfigErrors, MissingHiddenSize) {
  const std::string msg = parse_error(llama_with([](json& j) { j.erase("hidden_size"); }));
  EXPECT_NE(msg.find("missing required key 'hidden_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
}

TEST(HfConfigErrors, NonIntegerNumHiddenLayers) {
  for (json bad : {json(2.5), json("two"), json::array({2})}) {
    const std::string msg = parse_error(llama_with([&](json& j) { j["num_hidden_layers"] = bad; }));
    EXPECT_NE(msg.find("num_hidden_layers"), std::string::npos) << msg;
    EXPECT_NE(msg.find("integer"), std::string::npos) << msg;
  }
  // An integral float is accepted, as json writers sometimes emit 2.0.
  EXPECT_EQ(parse_error(llama_with([](json& j) { j["num_hidden_layers"] = 2.0; })), "");
}

TEST(HfConfigErrors, NonPositiveSizes) {
  const std::string msg = parse_error(llama_with([](json& j) { j["num_attention_heads"] = 0; }));
  EXPECT_NE(msg.find("num_attention_heads"), std::string::npos) << msg;
  EXPECT_NE(msg.find("positive"), std::string::npos) << msg;
}

TEST(HfConfigErrors, UnsupportedRopeTypeYarn) {
  {
    const std::string msg =
        parse_error(llama_with([](json& j) { j["rope_parameters"] = {{"rope_theta", 1e4}, {"rope_type", "yarn"}, {"factor", 4}}; }));
    EXPECT_NE(msg.find("rope_type"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'yarn'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("llama3"), std::string::npos) << msg;
  }
  {
    const std::string msg = parse_error(v4_config(1e4, {{"type", "yarn"}, {"factor", 4}}));
    EXPECT_NE(msg.find("rope_type"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'yarn'"), std::string::npos) << msg;
  }
}

TEST(HfConfigErrors, HeadsNotAMultipleOfKvHeads) {
  const std::string msg = parse_error(llama_with([](json& j) { j["num_key_value_heads"] = 3; }));
  EXPECT_NE(msg.find("num_attention_heads"), std::string::npos) << msg;
  EXPECT_NE(msg.find("num_key_value_heads"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(3)"), std::string::npos) << msg;
}

TEST(HfConfigErrors, InvalidJson) {
  for (const char* text : {"", "{\"model_type\": \"llama\",", "not json"}) {
    const std::string msg = parse_error(text);
    EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  }
  const std::string msg = parse_error("[1, 2]");
  EXPECT_NE(msg.find("JSON object"), std::string::npos) << msg;
}

TEST(HfConfigErrors, MistypedValues) {
  std::string msg = parse_error(llama_with([](json& j) { j["tie_word_embeddings"] = "yes"; }));
  EXPECT_NE(msg.find("tie_word_embeddings"), std::string::npos) << msg;
  msg = parse_error(llama_with([](json& j) { j["hidden_act"] = "gelu"; }));
  EXPECT_NE(msg.find("hidden_act"), std::string::npos) << msg;
  msg = parse_error(llama_with([](json& j) { j["rope_parameters"] = "fast"; }));
  EXPECT_NE(msg.find("rope_parameters"), std::string::npos) << msg;
  msg = parse_error(llama_with([](json& j) { j["head_dim"] = 15; }));
  EXPECT_NE(msg.find("head_dim"), std::string::npos) << msg;
}

// ---- Rope::apply ---------------------------------------------------------------------------------

std::vector<float> test_vector(int64_t n, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = scale * std::sin(0.7f * float(i) + 0.3f) + 0.01f * float(i);
  return v;
}

TEST(RopeApply, PositionZeroIsIdentity) {
  for (RopeLayout layout : {RopeLayout::kRotateHalf, RopeLayout::kInterleaved}) {
    RopeConfig c = rope_config("default", 10000.0);
    c.layout = layout;
    const Rope rope(c, 16);
    // 3 rows of 2 heads each, with 5 padding floats per row that must stay untouched.
    const int64_t stride = 2 * 16 + 5;
    std::vector<float> x = test_vector(3 * stride);
    const std::vector<float> before = x;
    const int64_t pos[3] = {0, 0, 0};
    rope.apply(x.data(), 3, stride, 2, pos);
    EXPECT_EQ(x, before);
  }
}

TEST(RopeApply, RotatesByPositionTimesFrequency) {
  // Rotate-half: pair (i, i + d/2) rotated by angle pos * inv_freq[i], float32 as HF computes it.
  const Rope rope(rope_config("default", 10000.0), 8);
  std::vector<float> x = test_vector(8);
  const std::vector<float> x0 = x;
  const int64_t pos = 5;
  rope.apply(x.data(), 1, 8, 1, &pos);
  for (int i = 0; i < 4; ++i) {
    const double angle = double(float(pos) * rope.inv_freq()[size_t(i)]);
    const double a = x0[size_t(i)], b = x0[size_t(i) + 4];
    EXPECT_NEAR(x[size_t(i)], a * std::cos(angle) - b * std::sin(angle), 1e-6) << i;
    EXPECT_NEAR(x[size_t(i) + 4], b * std::cos(angle) + a * std::sin(angle), 1e-6) << i;
  }
}

TEST(RopeApply, RotateHalfAndInterleavedAgreeUpToPermutation) {
  // The same rotation in two layouts: rotate-half element i (first half) and i + d/2 correspond to
  // interleaved elements 2i and 2i + 1.
  const int64_t hd = 16, half = hd / 2, heads = 3, rows = 4, stride = heads * hd;
  RopeConfig rc = rope_config("default", 10000.0);
  RopeConfig ic = rc;
  ic.layout = RopeLayout::kInterleaved;
  const Rope rh(rc, hd), il(ic, hd);
  std::vector<float> x = test_vector(rows * stride, 2.0f);
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t base = r * stride + h * hd;
        y[size_t(base + 2 * i)] = x[size_t(base + i)];
        y[size_t(base + 2 * i + 1)] = x[size_t(base + i + half)];
      }
  const std::vector<float> x0 = x;
  const int64_t pos[rows] = {1, 7, 100, 4095};
  rh.apply(x.data(), rows, stride, heads, pos);
  il.apply(y.data(), rows, stride, heads, pos);
  double moved = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t base = r * stride + h * hd;
        EXPECT_NEAR(y[size_t(base + 2 * i)], x[size_t(base + i)], 1e-6) << r << "," << h << "," << i;
        EXPECT_NEAR(y[size_t(base + 2 * i + 1)], x[size_t(base + i + half)], 1e-6) << r << "," << h << "," << i;
        moved = std::max(moved, double(std::abs(x[size_t(base + i)] - x0[size_t(base + i)])));
      }
  EXPECT_GT(moved, 0.1);  // the rotation did something
}

}  // namespace
}  // namespace ctx
