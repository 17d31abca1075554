// The shape and features of a decoder-only transformer of the Llama family, independent of the
// checkpoint format. One generic forward pass (transformer.h) is driven entirely by these fields.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/dtype.h"

namespace ctx {

enum class RopeLayout {
  kRotateHalf,   // HF: pairs (i, i + d/2)
  kInterleaved,  // Meta / llama2.c: pairs (2i, 2i + 1)
};

struct RopeConfig {
  std::string type = "default";  // default | linear | llama3
  double theta = 10000.0;
  double factor = 1.0;  // linear and llama3
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
  RopeLayout layout = RopeLayout::kRotateHalf;
  // Precision of the inverse frequencies. transformers keeps `inv_freq` as a module buffer, which is
  // cast with the model: a checkpoint loaded in bf16/f16 (its config `dtype`) computes RoPE from
  // bf16/f16-rounded frequencies even when activations are upcast. We reproduce that.
  DType inv_freq_dtype = DType::F32;
};

// What mixes tokens in a layer: self-attention (with a KV cache) or a Mamba-2 selective state
// space (with a fixed-size recurrent state, core/model/recurrent_state.h).
enum class LayerKind { kAttention, kMamba2 };

// Mamba-2 mixer shape (HF granitemoehybrid `mamba_*` keys). intermediate = heads * head_dim
// (= mamba_expand * hidden_size); the causal conv1d runs over x, B and C together (conv_dim()).
struct Mamba2Config {
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  int64_t state_size = 0;  // d_state
  int64_t num_groups = 1;  // B and C are shared by num_heads / num_groups heads
  int64_t conv_kernel = 4;  // d_conv
  int64_t chunk_size = 256;
  bool conv_bias = true;
  bool proj_bias = false;  // in_proj and out_proj
  double dt_min = 0.0, dt_max = INFINITY;  // time_step_limit: softplus(dt + dt_bias) is clamped to it

  int64_t intermediate() const { return num_heads * head_dim; }
  int64_t conv_dim() const { return intermediate() + 2 * num_groups * state_size; }
  // in_proj output: gate z, then x|B|C (conv input), then dt per head.
  int64_t in_proj_dim() const { return intermediate() + conv_dim() + num_heads; }
};

struct ModelConfig {
  std::string model_type;  // llama | mistral | qwen2 | qwen3 | granite | granitemoehybrid | llama2c
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // granitemoehybrid: the dense shared MLP's shared_intermediate_size
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-5;
  RopeConfig rope;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // bias on q/k/v projections (Qwen2; Llama attention_bias)
  bool o_bias = false;       // bias on the output projection (Llama attention_bias)
  bool mlp_bias = false;     // bias on gate/up/down
  bool qk_norm = false;      // per-head RMSNorm on q and k before RoPE (Qwen3)
  // Sliding-window attention per layer: 0 = full causal attention, W = query at position p sees
  // keys at positions p-W+1 .. p (Mistral `sliding_window`, HF semantics).
  std::vector<int64_t> layer_window;
  // Mixer of each layer; empty = every layer is attention. KV caches hold attention layers only,
  // numbered in order (kv_layer()).
  std::vector<LayerKind> layer_kinds;
  Mamba2Config mamba;
  bool use_rope = true;  // false: position_embedding_type "nope" (attention without positions)
  // Granite multipliers (1.0 elsewhere). attention_scale replaces 1/sqrt(head_dim) when > 0.
  double embedding_multiplier = 1.0;
  double attention_scale = 0.0;
  double residual_multiplier = 1.0;
  double logits_scaling = 1.0;
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;
  DType dtype = DType::F32;  // storage dtype of the checkpoint

  LayerKind layer_kind(int64_t layer) const {
    return layer_kinds.empty() ? LayerKind::kAttention : layer_kinds[size_t(layer)];
  }
  bool is_hybrid() const;  // some layer is not attention
  // Attention layers (those with KV), and the index of `layer` among them (-1 for other layers).
  int64_t num_kv_layers() const;
  int64_t kv_layer(int64_t layer) const;
  int64_t num_mamba_layers() const { return num_layers - num_kv_layers(); }

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  double softmax_scale() const;
  // Number of weights in all matrices and vectors (what a forward pass reads), embedding included.
  int64_t parameter_count() const;
  // One line: "llama L=2 d=64 heads=4/2 hd=16 ff=160 vocab=512".
  std::string summary() const;
};

// Parses an HF `config.json` text. Accepts the transformers 4.x spelling (top-level rope_theta /
// rope_scaling) and the 5.x one (rope_parameters). `source` names the file in errors. Throws
// ctx::Error for an unknown model_type, a missing or mistyped key, or unsupported settings.
// granitemoehybrid (Granite-4.0-H): `layer_types` entries "linear_attention" (or "mamba") are
// Mamba-2 layers, "full_attention" (or "attention") attention layers; the MLP is the dense shared
// MLP (shared_intermediate_size); num_local_experts > 0 (mixture of experts) is refused.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

// The model types parse_hf_config accepts, comma-separated, for messages.
std::string supported_model_types();

}  // namespace ctx
