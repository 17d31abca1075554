// Applies a Quantizer to a model's weights, as bitsandbytes' replace-with-quantized-Linear does:
// the seven linear layers of every decoder layer (q, k, v, o, gate, up, down) are quantized; by
// default lm_head stays float32 (bitsandbytes skips it). With quantizer.quantizes_lm_head() (the
// `lm_head=true` parameter) the classifier is quantized too, as llama.cpp quantizes output.weight;
// when it is tied to the embedding, a separate quantized copy is made for the classifier and the
// embedding stays float32 (a row lookup, not a matmul). Biases and norms stay float32.
// After quantization the float32 buffers that ModelWeights owns for quantized matrices are released
// (their views' `data` becomes null); memory-mapped float32 tensors are left mapped (they cost no
// private memory). Not thread-safe with compute on the same weights.
#pragma once

#include <cstdint>

#include "core/model/weights.h"
#include "core/plugin/registry.h"
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

// Quantizes `w` with the quant plugin of `spec` from `registry`; returns the canonical spec. Errors
// name the spec: ctx::Unsupported for a format that cannot take some matrix, ctx::Error otherwise.
std::string quantize_model_weights(ModelWeights& w, const Registry<Quantizer>& registry, const std::string& spec);

// Adds a quantizer plugin (every format but `none`) with the shared parameter
// `lm_head` (bool, default false) appended to info.schema; the factory's quantizer gets
// set_quantizes_lm_head() from it.
void register_quantizer(Registry<Quantizer>& registry, PluginInfo info, Registry<Quantizer>::Factory factory);

}  // namespace ctx
