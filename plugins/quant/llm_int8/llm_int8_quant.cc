// `llm_int8`: LLM.int8() (Dettmers et al. 2022) as bitsandbytes' Linear8bitLt runs it for inference
// (has_fp16_weights=False, threshold > 0; bitsandbytes/autograd/_functions.py, MatMul8bitLt.forward):
// * Weights: int8 with one absmax per output row (CB, SCB), exactly the `int8` layout; nothing else
//   is stored (8 + 32/cols bits/weight). bitsandbytes keeps no 16-bit weight copy for inference: the
//   outlier columns are dequantized from int8 when needed (subB = CB[:, idx] * SCB / 127).
// * Activations, per call: the outlier columns are the input features where any row has
//   |x| > threshold. Every other entry is quantized vector-wise to int8 with the row's absmax taken
//   over the entries with |x| <= threshold (bitsandbytes' row statistics ignore the outliers); the
//   outlier columns are zeroed there and computed in floating point against the int8 weights
//   dequantized (bitsandbytes does this part in fp16; we use float32).
//   y[j, r] = dot_i8(xq_j, q_r) * sx_j/127 * absmax_r/127 + sum_{c outlier} x[j, c] * q[r, c] * absmax_r/127
// * threshold = 0 disables the decomposition (pure int8 x int8, as bitsandbytes with threshold 0).
// * packed_layout() is kLlmInt8 (core/quant/packed_layout.h) with the threshold: the GPU engine uploads
//   the int8 bytes as for `int8` and decomposes each call's input the same way on the device
//   (core/cuda/kernels/int8_activations.cuh).
// Kernel: int8 x int8 dot products (quant::dot_i8x32 of q8_kernels.h: vpmaddubsw on |x| as unsigned
// times sign-adjusted w, pairs fit int16 since 2 * 127 * 127 < 32767, then vpmaddwd into int32), split
// by output rows across threads, for every n (x is quantized once per call).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/base/error.h"
#include "core/plugin/catalog.h"
#include "core/quant/quantize_model.h"
#include "plugins/quant/common/q8_kernels.h"
#include "plugins/quant/common/rowwise_int8.h"

namespace ctx {
namespace {

constexpr int64_t kMinParallelWork = 1 << 16;

int32_t dot_i8(const int8_t* a, const int8_t* b, int64_t n) {
  __m256i acc = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    acc = _mm256_add_epi32(acc, quant::dot_i8x32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i)),
                                                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i))));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  int32_t r = _mm_cvtsi128_si32(s);
  for (; i < n; ++i) r += int32_t(a[i]) * int32_t(b[i]);
  return r;
}

class LlmInt8Matrix final : public quant::RowwiseInt8Matrix {
 public:
  LlmInt8Matrix(const WeightMatrix& w, float threshold) : RowwiseInt8Matrix(w), threshold_(threshold) {}

  std::string format() const override { return str_cat("llm_int8(threshold=", threshold_, ")"); }
  // The int8 bytes plus how matmul() treats the activations (the GPU engine decomposes them the same way).
  PackedLayout packed_layout() const override {
    PackedLayout layout;
    layout.kind = PackedKind::kLlmInt8;
    layout.outlier_threshold = threshold_;
    return layout;
  }

  void matmul(const float* x, int64_t n, float* y) const override {
    if (n <= 0) return;
    const int64_t rows = this->rows(), cols = this->cols();
    // Outlier columns: any row's |x| above the threshold.
    std::vector<int64_t> outliers;
    if (threshold_ > 0)
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t j = 0; j < n; ++j)
          if (std::fabs(x[j * cols + c]) > threshold_) {
            outliers.push_back(c);
            break;
          }
    std::vector<uint8_t> is_outlier(size_t(cols), 0);
    for (int64_t c : outliers) is_outlier[size_t(c)] = 1;
    // Vector-wise int8 activations without the outlier columns; outlier values kept in float.
    const int64_t no = int64_t(outliers.size());
    std::vector<int8_t> xq(size_t(n * cols));
    std::vector<float> sx(static_cast<size_t>(n)), xo(static_cast<size_t>(n * no));
    for (int64_t j = 0; j < n; ++j) {
      const float* xr = x + j * cols;
      float amax = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const float a = std::fabs(xr[c]);
        if (threshold_ <= 0 || a <= threshold_) amax = std::max(amax, a);
      }
      sx[size_t(j)] = amax / 127.0f;
      const float inv = amax > 0 ? 127.0f / amax : 0.0f;
      for (int64_t c = 0; c < cols; ++c)
        xq[size_t(j * cols + c)] = is_outlier[size_t(c)] ? int8_t(0) : int8_t(std::nearbyint(xr[c] * inv));
      for (int64_t o = 0; o < no; ++o) xo[size_t(j * no + o)] = xr[outliers[size_t(o)]];
    }
#pragma omp parallel for schedule(static) if (rows * cols * n >= kMinParallelWork)
    for (int64_t r = 0; r < rows; ++r) {
      const int8_t* q = row(r);
      const float s = scale(r);
      for (int64_t j = 0; j < n; ++j) {
        float v = float(dot_i8(xq.data() + j * cols, q, cols)) * sx[size_t(j)];
        const float* xoj = xo.data() + j * no;
        for (int64_t o = 0; o < no; ++o) v += xoj[o] * float(q[outliers[size_t(o)]]);
        y[j * rows + r] = v * s;
      }
    }
  }

 private:
  float threshold_;
};

class LlmInt8Quantizer final : public Quantizer {
 public:
  explicit LlmInt8Quantizer(float threshold) : threshold_(threshold) {}
  std::shared_ptr<const QuantizedMatrix> quantize(const WeightMatrix& w) const override {
    return std::make_shared<LlmInt8Matrix>(w, threshold_);
  }

 private:
  float threshold_;
};

}  // namespace

void register_llm_int8(Catalog& catalog) {
  register_quantizer(catalog.quant,
      {"llm_int8", 1, "LLM.int8(): int8 weights and activations, outlier input features (|x| > threshold) in float",
       {ParamSpec::Float("threshold", 6.0, 0.0, 1e6,
                         "activation outlier threshold (bitsandbytes' default 6.0); 0 = no outlier decomposition")}},
      [](const Params& p) { return std::make_unique<LlmInt8Quantizer>(float(p.get_float("threshold"))); });
}

}  // namespace ctx
