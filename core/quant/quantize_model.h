// Applies a Quantizer to a model's weights, as bitsandbytes' replace-with-quantized-Linear does:
// the seven linear layers of every decoder layer (q, k, v, o, gate, up, down) are quantized; the
// embedding and lm_head stay float32 (bitsandbytes skips lm_head by default, and the embedding is a
// row lookup, not a matmul). Biases and norms stay float32.
// After quantization the float32 buffers that ModelWeights owns for quantized matrices are released
// (their views' `data` becomes null); memory-mapped float32 tensors are left mapped (they cost no
// private memory). Not thread-safe with compute on the same weights.
#pragma once

#include <cstdint>

#include "core/model/weights.h"
#include "core/quant/quantizer.h"

namespace ctx {

struct QuantizeReport {
  int64_t matrices_quantized = 0;
  int64_t matrices_kept = 0;  // the quantizer returned nullptr
  int64_t float_bytes_released = 0;
};

// Throws ctx::Error (or ctx::Unsupported) naming the layer and matrix, e.g.
// "layer 0 mlp.down_proj: q4_0 needs cols divisible by 32 ...; matrix is [64, 172]", leaving `w` unchanged.
QuantizeReport quantize_model_weights(ModelWeights& w, const Quantizer& quantizer);

}  // namespace ctx
