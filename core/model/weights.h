// The weights of a Llama-family model as float32 row-major views, ready for the CPU forward pass.
// Views point either into a memory-mapped checkpoint (float32 files, zero copy) or into buffers
// owned by ModelWeights (converted from bf16/f16, or generated). Immutable after construction and
// safe to share between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/model/model_config.h"

namespace ctx {

class QuantizedMatrix;

// Row-major [rows, cols] = PyTorch nn.Linear layout [out_features, in_features]. When `quant` is set
// the matrix is computed from its quantized form (core/quant/quantized_matrix.h) and `data` may be
// null (the float32 buffer was released by quantize_model_weights).
struct WeightMatrix {
  const float* data = nullptr;
  int64_t rows = 0, cols = 0;
  std::shared_ptr<const QuantizedMatrix> quant;
  bool empty() const { return data == nullptr && !quant; }
  // Bytes held for compute: the quantized bytes, or rows * cols * 4.
  int64_t bytes() const;
};

struct WeightVector {
  const float* data = nullptr;
  int64_t size = 0;
  bool empty() const { return data == nullptr; }
};

// A Mamba-2 mixer (HF `model.layers.N.mamba.*`); see core/model/mamba2_layer.h.
struct Mamba2Weights {
  WeightMatrix in_proj;      // [in_proj_dim, hidden]: rows z | x B C | dt
  WeightMatrix out_proj;     // [hidden, intermediate]
  WeightVector in_bias, out_bias;  // empty unless mamba.proj_bias
  WeightVector conv_weight;  // [conv_dim * conv_kernel], row c = the depthwise kernel of channel c
  WeightVector conv_bias;    // [conv_dim], empty unless mamba.conv_bias
  WeightVector dt_bias, a_log, d;  // [num_heads]
  WeightVector norm;         // [intermediate], the gated RMSNorm's weight
};

// One decoder layer: a mixer (attention: attn_norm, wq..bo, q/k norms; Mamba-2: attn_norm and
// `mamba`; the other's fields stay empty), then the MLP (ffn_norm, gate/up/down). For
// granitemoehybrid the MLP is the shared MLP, its stacked input_linear split into gate and up.
struct LayerWeights {
  WeightVector attn_norm, ffn_norm;
  WeightMatrix wq, wk, wv, wo;
  WeightVector bq, bk, bv, bo;  // empty unless the config has biases
  WeightVector q_norm, k_norm;  // empty unless config.qk_norm
  WeightMatrix w_gate, w_up, w_down;
  WeightVector b_gate, b_up, b_down;
  Mamba2Weights mamba;
};

struct ModelWeights {
  WeightMatrix embed;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  WeightVector final_norm;
  WeightMatrix lm_head;  // == embed when tied
  // Keeps mapped files and owned buffers alive for as long as the views are used.
  std::vector<std::shared_ptr<const void>> storage;

  // Bytes of weights that one decode step reads (every matrix and vector once; the embedding
  // contributes one row; a tied lm_head is counted once as the classifier). Quantized matrices count
  // their packed bytes (QuantizedMatrix::bytes()).
  int64_t bytes_read_per_token() const;
  // Bytes of all weights held for compute (float32, or packed where quantized).
  int64_t bytes_held() const;
};

// A raw tensor offered by a checkpoint: dtype, shape and bytes (which live as long as `owner`).
struct RawTensor {
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;
  std::shared_ptr<const void> owner;
};

// Returns the tensor called `name`, or nullopt when the checkpoint has none. `expected_shape` is
// what the model needs (sources that synthesize weights use it; others only report mismatches).
using TensorLookup =
    std::function<std::optional<RawTensor>(const std::string& name, const std::vector<int64_t>& expected_shape)>;

// Assembles ModelWeights for `config` from HF-named tensors ("model.layers.0.self_attn.q_proj.weight",
// "model.layers.0.mamba.in_proj.weight", "model.layers.0.shared_mlp.input_linear.weight", ...). Float32 tensors are used in place, f16/bf16 converted once. Throws ctx::Error naming `source`
// and the tensor for a missing tensor, a wrong shape or an unsupported dtype.
ModelWeights assemble_hf_weights(const ModelConfig& config, const TensorLookup& lookup, const std::string& source);

}  // namespace ctx
