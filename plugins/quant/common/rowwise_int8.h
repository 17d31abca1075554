// Int8 weights with one absmax per output row (bitsandbytes' vector-wise "CB"/"SCB" layout):
// q[r, c] = round(w[r, c] * 127 / absmax[r]) (round half to even, as torch.round), stored row-major
// as int8 in [-127, 127]; w ~= q * absmax[r] / 127. A zero row has absmax 0 and q 0.
// Buffers: "int8" (rows * cols bytes), "absmax" (rows float32) -> 8 + 32 / cols bits per weight.
// Any shape. Shared by the `int8` (weight-only) and `llm_int8` (LLM.int8()) plugins.
// Kernels: by default activations stay float32 (the fused decode kernel of fused_kernels.h for
// n <= 8, the tiled path above; the product of the dequantized matrix up to float summation order).
// With q8_activations (int8's activations=q8_0) and cols % 32 == 0, matmul() quantizes x to q8_0 blocks
// of 32 and runs the shared integer kernel (q8_kernels.h) for every n: the int8 codes are the weights'
// own, so the only extra error is the activation rounding, |y - dequantize(W) x| <= sum over
// activation blocks b of dx_b / 2 * sum_{c in b} |w_c| (plus float rounding). Other shapes keep the
// float path.
// Immutable; thread-safe.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/model/weights.h"
#include "core/quant/quantized_matrix.h"
#include "plugins/quant/common/q8_kernels.h"

namespace ctx::quant {

class RowwiseInt8Matrix : public QuantizedMatrix {
 public:
  explicit RowwiseInt8Matrix(const WeightMatrix& w, bool q8_activations = false);

  std::string format() const override { return q8_activations_ ? "int8(activations=q8_0)" : "int8"; }
  void matmul(const float* x, int64_t n, float* y) const override;
  std::vector<PackedBuffer> buffers() const override;
  PackedLayout packed_layout() const override { return {PackedKind::kRowwiseInt8}; }
  void dequantize_rows(int64_t r0, int64_t r1, float* out) const override;

  const int8_t* row(int64_t r) const { return q_.data() + r * cols(); }
  float scale(int64_t r) const { return absmax_[size_t(r)] / 127.0f; }

  // Group decoder (fused_kernels.h).
  float group_scale(int64_t r, int64_t) const { return scale(r); }
  void load_group(int64_t r, int64_t g, __m256 w[4]) const;
  float value(int64_t r, int64_t c) const { return float(row(r)[c]) * scale(r); }
  // Int8 group decoder (q8_kernels.h).
  static constexpr auto kActivationOrder = Q8Activations::kElements;
  const void* group_data(int64_t r, int64_t g) const { return row(r) + g * 32; }
  __m256i load_i8(int64_t r, int64_t g) const { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row(r) + g * 32)); }
  float i8_scale(int64_t r, int64_t) const { return scale(r); }

 protected:
  bool has_fused_kernel() const override { return true; }
  void fused_rows(const float* x, int64_t n, float* y, int64_t r0, int64_t r1) const override;

 private:
  bool q8_activations_;
  std::vector<int8_t> q_;
  std::vector<float> absmax_;
};

}  // namespace ctx::quant
