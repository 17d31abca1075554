#include "plugins/quant/common/rowwise_int8.h"

#include <cmath>

#include "plugins/quant/common/fused_kernels.h"
#include "plugins/quant/common/q8_kernels.h"

namespace ctx::quant {

RowwiseInt8Matrix::RowwiseInt8Matrix(const WeightMatrix& w, bool q8_activations)
    : QuantizedMatrix(w.rows, w.cols), q8_activations_(q8_activations && w.cols % 32 == 0), q_(size_t(w.rows * w.cols)), absmax_(size_t(w.rows)) {
  for (int64_t r = 0; r < w.rows; ++r) {
    const float* src = w.data + r * w.cols;
    float amax = 0;
    for (int64_t c = 0; c < w.cols; ++c) amax = std::max(amax, std::fabs(src[c]));
    absmax_[size_t(r)] = amax;
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    int8_t* dst = q_.data() + r * w.cols;
    for (int64_t c = 0; c < w.cols; ++c) dst[c] = int8_t(std::nearbyint(src[c] * inv));
  }
}

std::vector<PackedBuffer> RowwiseInt8Matrix::buffers() const {
  return {{"int8", q_.data(), int64_t(q_.size())}, {"absmax", absmax_.data(), int64_t(absmax_.size() * 4)}};
}

void RowwiseInt8Matrix::load_group(int64_t r, int64_t g, __m256 w[4]) const { load_i8x32(row(r) + g * 32, w); }

void RowwiseInt8Matrix::dequantize_rows(int64_t r0, int64_t r1, float* out) const { dequantize_groups(*this, r0, r1, out); }

void RowwiseInt8Matrix::matmul(const float* x, int64_t n, float* y) const {
  if (n <= 0) return;
  if (!q8_activations_) return QuantizedMatrix::matmul(x, n, y);
  const Q8Activations& a = Q8Activations::of(x, n, cols());
  for_row_chunks(n, [&](int64_t r0, int64_t r1) { q8_dot_rows(*this, a, y, r0, r1); });
}

void RowwiseInt8Matrix::fused_rows(const float* x, int64_t n, float* y, int64_t r0, int64_t r1) const {
  quant::fused_rows(*this, x, n, y, r0, r1);
}

}  // namespace ctx::quant
