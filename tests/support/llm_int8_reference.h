// LLM.int8()'s decomposition of an input x [n, cols], restated from the `llm_int8` plugin's matmul()
// (plugins/quant/llm_int8/llm_int8_quant.cc) with its float32 operations, for tests of the GPU's
// staging (core/cuda/kernels/int8_activations.cuh): which columns are outliers, each row's scale and
// each entry's int8 code. Header-only, so host-only CUDA tests can use it without the support library.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace ctx::test {

struct LlmInt8Decomposition {
  std::vector<bool> outlier;  // [cols]: any row has |x| > threshold (threshold > 0)
  std::vector<float> sx;      // [n]: amax / 127 over the row's entries |x| <= threshold
  std::vector<int> code;      // [n, cols]: nearbyint(x * 127 / amax), 0 in outlier columns

  // The value the CPU multiplies for entry (j, c): x itself in an outlier column, else code * sx.
  float value(const float* x, int64_t cols, int64_t j, int64_t c) const {
    return outlier[size_t(c)] ? x[j * cols + c] : float(code[size_t(j * cols + c)]) * sx[size_t(j)];
  }
};

inline LlmInt8Decomposition llm_int8_decomposition(const float* x, int64_t n, int64_t cols, float threshold) {
  LlmInt8Decomposition d{std::vector<bool>(size_t(cols), false), std::vector<float>(size_t(n)),
                         std::vector<int>(size_t(n * cols), 0)};
  if (threshold > 0)
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t j = 0; j < n; ++j)
        if (std::fabs(x[j * cols + c]) > threshold) d.outlier[size_t(c)] = true;
  for (int64_t j = 0; j < n; ++j) {
    const float* xr = x + j * cols;
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c)
      if (threshold <= 0 || std::fabs(xr[c]) <= threshold) amax = std::max(amax, std::fabs(xr[c]));
    d.sx[size_t(j)] = amax / 127.0f;
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (int64_t c = 0; c < cols; ++c)
      if (!d.outlier[size_t(c)]) d.code[size_t(j * cols + c)] = int(std::nearbyint(xr[c] * inv));
  }
  return d;
}

}  // namespace ctx::test
