// The shape and features of a decoder-only transformer of the Llama family, independent of the
// checkpoint format. One generic forward pass (transformer.h) is driven entirely by these fields.
#pragma once

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

struct ModelConfig {
  std::string model_type;  // llama | mistral | qwen2 | qwen3 | granite | llama2c
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
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
  // Granite multipliers (1.0 elsewhere). attention_scale replaces 1/sqrt(head_dim) when > 0.
  double embedding_multiplier = 1.0;
  double attention_scale = 0.0;
  double residual_multiplier = 1.0;
  double logits_scaling = 1.0;
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;
  DType dtype = DType::F32;  // storage dtype of the checkpoint

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
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

// The model types parse_hf_config accepts, comma-separated, for messages.
std::string supported_model_types();

}  // namespace ctx
