#include "core/model/model_config.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/base/error.h"

namespace ctx {
namespace {

using json = nlohmann::json;

const std::set<std::string> kSupported = {"llama", "mistral", "qwen2", "qwen3", "granite", "granitemoehybrid"};

// Typed access to config keys with errors that name the file and key.
class ConfigReader {
 public:
  ConfigReader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  int64_t require_int(const char* key) const {
    if (!has(key)) fail(source_, ": missing required key '", key, "'");
    return as_int(j_.at(key), key);
  }
  int64_t get_int(const char* key, int64_t dflt) const { return has(key) ? as_int(j_.at(key), key) : dflt; }
  double get_double(const char* key, double dflt) const { return has(key) ? as_double(j_.at(key), key) : dflt; }
  bool get_bool(const char* key, bool dflt) const {
    if (!has(key)) return dflt;
    if (!j_.at(key).is_boolean()) fail(source_, ": key '", key, "' must be true or false, got ", j_.at(key).dump());
    return j_.at(key).get<bool>();
  }
  std::string get_string(const char* key, const std::string& dflt) const {
    if (!has(key)) return dflt;
    if (!j_.at(key).is_string()) fail(source_, ": key '", key, "' must be a string, got ", j_.at(key).dump());
    return j_.at(key).get<std::string>();
  }
  const json& raw() const { return j_; }
  const std::string& source() const { return source_; }

  int64_t as_int(const json& v, const std::string& key) const {
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return int64_t(v.get<double>());
    fail(source_, ": key '", key, "' must be an integer, got ", v.dump());
  }
  double as_double(const json& v, const std::string& key) const {
    if (v.is_number()) return v.get<double>();
    // transformers 5.x writes non-finite floats as {"__float__": "Infinity"}.
    if (v.is_object() && v.contains("__float__") && v["__float__"].is_string()) {
      const std::string s = v["__float__"].get<std::string>();
      if (s == "Infinity") return INFINITY;
      if (s == "-Infinity") return -INFINITY;
      if (s == "NaN") return NAN;
    }
    fail(source_, ": key '", key, "' must be a number, got ", v.dump());
  }

 private:
  const json& j_;
  std::string source_;
};

void require_positive(const ConfigReader& r, const char* key, int64_t v) {
  if (v <= 0) fail(r.source(), ": key '", key, "' must be positive, got ", v);
}

RopeConfig parse_rope(const ConfigReader& r) {
  RopeConfig rope;
  // 5.x: rope_parameters holds everything; 4.x: rope_theta at top level, rope_scaling optional.
  const json* params = nullptr;
  if (r.has("rope_parameters")) {
    params = &r.raw().at("rope_parameters");
    if (!params->is_object()) fail(r.source(), ": 'rope_parameters' must be an object");
  } else {
    rope.theta = r.get_double("rope_theta", 10000.0);
    if (r.has("rope_scaling")) {
      params = &r.raw().at("rope_scaling");
      if (!params->is_object()) fail(r.source(), ": 'rope_scaling' must be an object or null");
    }
  }
  if (params) {
    ConfigReader p(*params, r.source() + " (rope)");
    if (params->contains("rope_theta")) rope.theta = p.get_double("rope_theta", rope.theta);
    rope.type = p.get_string("rope_type", p.get_string("type", "default"));
    rope.factor = p.get_double("factor", 1.0);
    rope.low_freq_factor = p.get_double("low_freq_factor", 1.0);
    rope.high_freq_factor = p.get_double("high_freq_factor", 4.0);
    rope.original_max_position_embeddings = p.get_int("original_max_position_embeddings", 8192);
  }
  if (rope.type != "default" && rope.type != "linear" && rope.type != "llama3")
    fail(r.source(), ": unsupported rope_type '", rope.type, "' (supported: default, linear, llama3)");
  if (!(rope.theta > 0)) fail(r.source(), ": rope_theta must be positive, got ", rope.theta);
  if (rope.type != "default" && !(rope.factor > 0)) fail(r.source(), ": rope factor must be positive, got ", rope.factor);
  if (rope.type == "llama3" && !(rope.high_freq_factor > rope.low_freq_factor))
    fail(r.source(), ": llama3 rope needs high_freq_factor > low_freq_factor");
  return rope;
}

std::vector<int32_t> parse_token_ids(const ConfigReader& r, const char* key) {
  std::vector<int32_t> ids;
  if (!r.has(key)) return ids;
  const json& v = r.raw().at(key);
  if (v.is_array()) {
    for (const auto& e : v) ids.push_back(int32_t(r.as_int(e, key)));
  } else {
    ids.push_back(int32_t(r.as_int(v, key)));
  }
  return ids;
}

// granitemoehybrid: the mixer of each layer, the Mamba-2 shape and the position embedding.
void parse_hybrid_layers(const ConfigReader& r, ModelConfig& c) {
  const std::string& source = r.source();
  if (!r.has("layer_types")) fail(source, ": missing required key 'layer_types' (granitemoehybrid)");
  const json& lt = r.raw().at("layer_types");
  if (!lt.is_array() || int64_t(lt.size()) != c.num_layers)
    fail(source, ": 'layer_types' must be a list of ", c.num_layers, " strings");
  for (size_t l = 0; l < lt.size(); ++l) {
    const std::string t = lt[l].is_string() ? lt[l].get<std::string>() : "";
    if (t == "linear_attention" || t == "mamba") {
      c.layer_kinds.push_back(LayerKind::kMamba2);
    } else if (t == "full_attention" || t == "attention") {
      c.layer_kinds.push_back(LayerKind::kAttention);
    } else {
      fail(source, ": layer_types[", l, "] = ", lt[l].dump(),
           " is not a known layer type (supported: linear_attention or mamba for Mamba-2, full_attention or attention)");
    }
  }
  Mamba2Config& m = c.mamba;
  m.num_heads = r.get_int("mamba_n_heads", 128);
  m.num_groups = r.get_int("mamba_n_groups", 1);
  m.state_size = r.get_int("mamba_d_state", 256);
  m.conv_kernel = r.get_int("mamba_d_conv", 4);
  m.chunk_size = r.get_int("mamba_chunk_size", 256);
  m.conv_bias = r.get_bool("mamba_conv_bias", true);
  m.proj_bias = r.get_bool("mamba_proj_bias", false);
  const int64_t expand = r.get_int("mamba_expand", 2);
  for (auto [k, v] : {std::pair{"mamba_n_heads", m.num_heads}, {"mamba_n_groups", m.num_groups},
                      {"mamba_d_state", m.state_size}, {"mamba_d_conv", m.conv_kernel},
                      {"mamba_chunk_size", m.chunk_size}, {"mamba_expand", expand}})
    require_positive(r, k, v);
  const int64_t inner = expand * c.hidden_size;
  // "auto" (the HF default) derives the head size from the expanded width.
  const bool auto_head = !r.has("mamba_d_head") || (r.raw().at("mamba_d_head").is_string() &&
                                                    r.raw().at("mamba_d_head").get<std::string>() == "auto");
  m.head_dim = auto_head ? inner / m.num_heads : r.require_int("mamba_d_head");
  require_positive(r, "mamba_d_head", m.head_dim);
  if (m.intermediate() != inner)
    fail(source, ": mamba_n_heads * mamba_d_head (", m.num_heads, " * ", m.head_dim, ") must equal mamba_expand * hidden_size (",
         expand, " * ", c.hidden_size, ")");
  if (m.num_heads % m.num_groups != 0)
    fail(source, ": mamba_n_heads (", m.num_heads, ") must be a multiple of mamba_n_groups (", m.num_groups, ")");
  if (r.has("time_step_limit")) {
    const json& tl = r.raw().at("time_step_limit");
    if (!tl.is_array() || tl.size() != 2) fail(source, ": 'time_step_limit' must be a list [min, max]");
    m.dt_min = r.as_double(tl[0], "time_step_limit");
    m.dt_max = r.as_double(tl[1], "time_step_limit");
    if (!(m.dt_min <= m.dt_max)) fail(source, ": time_step_limit must have min <= max, got [", m.dt_min, ", ", m.dt_max, "]");
  }
  const std::string pos = r.get_string("position_embedding_type", "rope");
  if (pos != "rope" && pos != "nope")
    fail(source, ": unsupported position_embedding_type '", pos, "' (supported: rope, nope)");
  c.use_rope = pos == "rope";
}

}  // namespace

bool ModelConfig::is_hybrid() const { return num_kv_layers() != num_layers; }

int64_t ModelConfig::num_kv_layers() const {
  if (layer_kinds.empty()) return num_layers;
  return int64_t(std::count(layer_kinds.begin(), layer_kinds.end(), LayerKind::kAttention));
}

int64_t ModelConfig::kv_layer(int64_t layer) const {
  if (layer_kinds.empty()) return layer;
  if (layer_kinds[size_t(layer)] != LayerKind::kAttention) return -1;
  return int64_t(std::count(layer_kinds.begin(), layer_kinds.begin() + layer, LayerKind::kAttention));
}

double ModelConfig::softmax_scale() const {
  return attention_scale > 0 ? attention_scale : 1.0 / std::sqrt(double(head_dim));
}

int64_t ModelConfig::parameter_count() const {
  int64_t per_layer = hidden_size * (q_dim() + 2 * kv_dim()) + q_dim() * hidden_size;
  if (qkv_bias) per_layer += q_dim() + 2 * kv_dim();
  if (o_bias) per_layer += hidden_size;
  if (qk_norm) per_layer += 2 * head_dim;
  const Mamba2Config& m = mamba;
  int64_t per_mamba = hidden_size * m.in_proj_dim() + m.intermediate() * hidden_size + m.conv_dim() * m.conv_kernel +
                      3 * m.num_heads + m.intermediate();
  if (m.conv_bias) per_mamba += m.conv_dim();
  if (m.proj_bias) per_mamba += m.in_proj_dim() + hidden_size;
  const int64_t per_mlp = 3 * hidden_size * intermediate_size + 2 * hidden_size + (mlp_bias ? 2 * intermediate_size + hidden_size : 0);
  int64_t n = num_kv_layers() * per_layer + num_mamba_layers() * per_mamba + num_layers * per_mlp +
              vocab_size * hidden_size + hidden_size;
  if (!tie_word_embeddings) n += vocab_size * hidden_size;
  return n;
}

std::string ModelConfig::summary() const {
  return str_cat(model_type, " L=", num_layers, " d=", hidden_size, " heads=", num_heads, "/", num_kv_heads,
                 " hd=", head_dim, " ff=", intermediate_size, " vocab=", vocab_size,
                 is_hybrid() ? str_cat(" mamba2=", num_mamba_layers(), "/", num_layers) : std::string(),
                 " params=", parameter_count());
}

std::string supported_model_types() {
  std::string s;
  for (const auto& t : kSupported) s += (s.empty() ? "" : ", ") + t;
  return s;
}

ModelConfig parse_hf_config(const std::string& json_text, const std::string& source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    fail(source, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(source, ": expected a JSON object");
  ConfigReader r(j, source);
  ModelConfig c;
  if (!r.has("model_type")) fail(source, ": missing required key 'model_type'");
  c.model_type = r.get_string("model_type", "");
  if (!kSupported.count(c.model_type))
    fail(source, ": unknown model_type '", c.model_type, "' (supported: ", supported_model_types(), ")");

  c.vocab_size = r.require_int("vocab_size");
  c.hidden_size = r.require_int("hidden_size");
  const bool hybrid = c.model_type == "granitemoehybrid";
  if (hybrid && r.get_int("num_local_experts", 0) > 0)
    fail(source, ": mixture-of-experts granitemoehybrid is not supported yet (num_local_experts = ",
         r.get_int("num_local_experts", 0), "; only dense models with num_local_experts = 0 run)");
  c.intermediate_size = r.require_int(hybrid ? "shared_intermediate_size" : "intermediate_size");
  c.num_layers = r.require_int("num_hidden_layers");
  c.num_heads = r.require_int("num_attention_heads");
  c.num_kv_heads = r.get_int("num_key_value_heads", c.num_heads);
  for (auto [k, v] : {std::pair{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
                      {hybrid ? "shared_intermediate_size" : "intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_layers},
                      {"num_attention_heads", c.num_heads}, {"num_key_value_heads", c.num_kv_heads}})
    require_positive(r, k, v);
  if (c.num_heads % c.num_kv_heads != 0)
    fail(source, ": num_attention_heads (", c.num_heads, ") must be a multiple of num_key_value_heads (", c.num_kv_heads, ")");
  if (r.has("head_dim")) {
    c.head_dim = r.require_int("head_dim");
  } else {
    if (c.hidden_size % c.num_heads != 0)
      fail(source, ": hidden_size (", c.hidden_size, ") is not divisible by num_attention_heads (", c.num_heads,
           ") and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  require_positive(r, "head_dim", c.head_dim);
  if (c.head_dim % 2 != 0) fail(source, ": head_dim must be even for RoPE, got ", c.head_dim);
  c.max_position_embeddings = r.get_int("max_position_embeddings", 4096);
  c.rms_norm_eps = r.get_double("rms_norm_eps", 1e-6);
  c.rope = parse_rope(r);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  const std::string act = r.get_string("hidden_act", "silu");
  if (act != "silu") fail(source, ": unsupported hidden_act '", act, "' (supported: silu)");

  const bool attention_bias = r.get_bool("attention_bias", false);
  c.qkv_bias = c.model_type == "qwen2" ? true : attention_bias;
  c.o_bias = c.model_type == "qwen2" ? false : attention_bias;
  c.mlp_bias = r.get_bool("mlp_bias", false);
  c.qk_norm = c.model_type == "qwen3";

  // Sliding windows: Mistral applies `sliding_window` to every layer; Qwen2/3 only with
  // use_sliding_window, on the layers that layer_types marks "sliding_attention".
  c.layer_window.assign(size_t(c.num_layers), 0);
  const int64_t window = r.get_int("sliding_window", 0);
  if (window < 0) fail(source, ": sliding_window must be non-negative, got ", window);
  if (c.model_type == "mistral") {
    c.layer_window.assign(size_t(c.num_layers), window);
  } else if (r.get_bool("use_sliding_window", false) && window > 0) {
    if (!r.has("layer_types")) {
      const int64_t first = r.get_int("max_window_layers", c.num_layers);
      for (int64_t l = first; l < c.num_layers; ++l) c.layer_window[size_t(l)] = window;
    }
  }
  if (hybrid) {
    parse_hybrid_layers(r, c);
  } else if (r.has("layer_types")) {
    const json& lt = j.at("layer_types");
    if (!lt.is_array() || int64_t(lt.size()) != c.num_layers)
      fail(source, ": 'layer_types' must be a list of ", c.num_layers, " strings");
    for (size_t l = 0; l < lt.size(); ++l) {
      const std::string t = lt[l].is_string() ? lt[l].get<std::string>() : "";
      if (t == "sliding_attention") {
        if (window <= 0) fail(source, ": layer_types[", l, "] is sliding_attention but sliding_window is not set");
        c.layer_window[l] = window;
      } else if (t != "full_attention") {
        fail(source, ": layer_types[", l, "] = ", lt[l].dump(), " is not supported (supported: full_attention, sliding_attention)");
      }
    }
  }

  if (c.model_type == "granite" || hybrid) {
    c.embedding_multiplier = r.get_double("embedding_multiplier", 1.0);
    c.attention_scale = r.get_double("attention_multiplier", 0.0);
    c.residual_multiplier = r.get_double("residual_multiplier", 1.0);
    c.logits_scaling = r.get_double("logits_scaling", 1.0);
    if (!(c.logits_scaling != 0)) fail(source, ": logits_scaling must be non-zero");
  }
  c.bos_token_id = r.has("bos_token_id") ? int32_t(r.require_int("bos_token_id")) : -1;
  c.eos_token_ids = parse_token_ids(r, "eos_token_id");
  const std::string dtype = r.get_string("dtype", r.get_string("torch_dtype", "float32"));
  c.dtype = dtype == "bfloat16" ? DType::BF16 : dtype == "float16" ? DType::F16 : DType::F32;
  c.rope.inv_freq_dtype = c.dtype;
  return c;
}

}  // namespace ctx
