// The quantizer plugin interface (registry `catalog.quant`, folders plugins/quant/<name>/): turns one
// linear layer's float32 weight matrix into a QuantizedMatrix with its own kernels.
// Implementations are immutable after construction and thread-safe.
#pragma once

#include <memory>

#include "core/model/weights.h"
#include "core/quant/quantized_matrix.h"

namespace ctx {

class Quantizer {
 public:
  virtual ~Quantizer() = default;
  // The quantized form of `w` (w.data must be set), or nullptr to keep the matrix in float32.
  // Throws ctx::Unsupported naming the shape when the format cannot hold a [rows, cols] matrix.
  virtual std::shared_ptr<const QuantizedMatrix> quantize(const WeightMatrix& w) const = 0;

  // Whether quantize_model_weights also quantizes the classifier (lm_head): the `lm_head` parameter
  // that register_quantizer (core/quant/quantize_model.h) gives every format. Default false.
  bool quantizes_lm_head() const { return lm_head_; }
  void set_quantizes_lm_head(bool on) { lm_head_ = on; }

 private:
  bool lm_head_ = false;
};

}  // namespace ctx
