#include "core/model/recurrent_state.h"

#include <algorithm>

#include "core/base/error.h"

namespace ctx {

RecurrentState::RecurrentState(const ModelConfig& c) {
  const Mamba2Config& m = c.mamba;
  conv_floats_ = m.conv_dim() * (m.conv_kernel - 1);
  const int64_t per_layer = conv_floats_ + m.num_heads * m.head_dim * m.state_size;
  int64_t total = 0;
  offsets_.assign(size_t(c.num_layers), -1);
  for (int64_t l = 0; l < c.num_layers; ++l)
    if (c.layer_kind(l) == LayerKind::kMamba2) offsets_[size_t(l)] = total, total += per_layer;
  data_.assign(size_t(total), 0.0f);
}

int64_t RecurrentState::offset(int64_t layer) const {
  CTX_CHECK(layer >= 0 && layer < int64_t(offsets_.size()) && offsets_[size_t(layer)] >= 0, "layer ", layer,
            " has no recurrent state (not a Mamba-2 layer)");
  return offsets_[size_t(layer)];
}

float* RecurrentState::conv(int64_t layer) { return data_.data() + offset(layer); }
float* RecurrentState::ssm(int64_t layer) { return data_.data() + offset(layer) + conv_floats_; }
const float* RecurrentState::conv(int64_t layer) const { return data_.data() + offset(layer); }
const float* RecurrentState::ssm(int64_t layer) const { return data_.data() + offset(layer) + conv_floats_; }

void RecurrentState::clear() { std::fill(data_.begin(), data_.end(), 0.0f); }

}  // namespace ctx
