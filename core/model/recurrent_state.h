// The recurrent state of one sequence's Mamba-2 layers (core/model/mamba2_layer.h): per Mamba-2
// layer, the causal conv1d's last conv_kernel - 1 inputs ([conv_dim][conv_kernel - 1], oldest
// first) and the SSM state ([num_heads][head_dim][state_size]). Its size is fixed by the config,
// independent of the sequence length; a new or cleared state is all zeros (the state before the
// first token). Attention layers have no slot. Lives in the sequence's KvCache next to the K/V of
// the attention layers. Not thread-safe, like the cache that holds it.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/model_config.h"

namespace ctx {

class RecurrentState {
 public:
  RecurrentState() = default;
  // One zeroed slot per Mamba-2 layer of `config` (none for an attention-only model).
  explicit RecurrentState(const ModelConfig& config);

  bool empty() const { return data_.empty(); }
  // Slots of model layer `layer`, which must be a Mamba-2 layer.
  float* conv(int64_t layer);
  float* ssm(int64_t layer);
  const float* conv(int64_t layer) const;
  const float* ssm(int64_t layer) const;

  void clear();  // back to zeros
  // Bytes held: fixed for the life of the sequence.
  int64_t bytes() const { return int64_t(data_.size() * sizeof(float)); }

 private:
  int64_t offset(int64_t layer) const;

  std::vector<int64_t> offsets_;  // per model layer: start of its conv slot, -1 for attention layers
  int64_t conv_floats_ = 0;       // per layer; its ssm slot follows the conv slot
  std::vector<float> data_;
};

}  // namespace ctx
