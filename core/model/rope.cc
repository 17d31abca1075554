#include "core/model/rope.h"

#include <cmath>
#include <numbers>

namespace ctx {

Rope::Rope(const RopeConfig& c, int64_t head_dim) : head_dim_(head_dim), layout_(c.layout) {
  const int64_t half = head_dim / 2;
  inv_freq_.resize(size_t(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = float(2 * i) / float(head_dim);
    inv_freq_[size_t(i)] = 1.0f / std::pow(float(c.theta), exponent);
  }
  if (c.type == "linear") {
    for (float& f : inv_freq_) f = float(f / c.factor);
  } else if (c.type == "llama3") {
    // HF _compute_llama3_parameters: long wavelengths are divided by `factor`, short ones kept,
    // the band in between interpolated smoothly.
    const double old_len = double(c.original_max_position_embeddings);
    const double low_wavelen = old_len / c.low_freq_factor, high_wavelen = old_len / c.high_freq_factor;
    for (float& f : inv_freq_) {
      const double wavelen = 2 * std::numbers::pi / double(f);
      if (wavelen > low_wavelen) {
        f = float(f / c.factor);
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
        f = float((1 - smooth) * f / c.factor + smooth * f);
      }
    }
  }
  if (c.inv_freq_dtype == DType::BF16) {
    for (float& f : inv_freq_) f = bf16_to_f32(f32_to_bf16(f));
  } else if (c.inv_freq_dtype == DType::F16) {
    for (float& f : inv_freq_) f = f16_to_f32(f32_to_f16(f));
  }
}

void Rope::apply(float* x, int64_t n_rows, int64_t row_stride, int64_t n_heads, const int64_t* positions) const {
  const int64_t half = head_dim_ / 2;
#pragma omp parallel for schedule(static) if (n_rows > 16)
  for (int64_t r = 0; r < n_rows; ++r) {
    float cs[512], sn[512];
    float* cosv = cs;
    float* sinv = sn;
    std::vector<float> big;
    if (half > 512) {
      big.resize(size_t(2 * half));
      cosv = big.data();
      sinv = big.data() + half;
    }
    const float pos = float(positions[r]);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * inv_freq_[size_t(i)];
      cosv[i] = std::cos(angle);
      sinv[i] = std::sin(angle);
    }
    float* row = x + r * row_stride;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = row + h * head_dim_;
      if (layout_ == RopeLayout::kRotateHalf) {
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cosv[i] - b * sinv[i];
          v[i + half] = b * cosv[i] + a * sinv[i];
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          const float a = v[2 * i], b = v[2 * i + 1];
          v[2 * i] = a * cosv[i] - b * sinv[i];
          v[2 * i + 1] = a * sinv[i] + b * cosv[i];
        }
      }
    }
  }
}

}  // namespace ctx
