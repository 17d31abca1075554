// Rotary position embeddings. Frequencies follow HF transformers' float32 computation (default,
// linear and llama3 scaling); angles are float32 products pos * inv_freq, as HF and llama2.c compute
// them, so long positions round the same way as the references. Immutable; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/model_config.h"

namespace ctx {

class Rope {
 public:
  Rope(const RopeConfig& config, int64_t head_dim);

  // Rotates `n_heads` heads of each of `n_rows` rows in place. Row r starts at x + r * row_stride
  // and sits at position positions[r].
  void apply(float* x, int64_t n_rows, int64_t row_stride, int64_t n_heads, const int64_t* positions) const;

  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  int64_t head_dim_;
  RopeLayout layout_;
  std::vector<float> inv_freq_;  // head_dim / 2 entries
};

}  // namespace ctx
