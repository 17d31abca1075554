#include "core/cpu/linear.h"

#include <immintrin.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>

#include "core/base/error.h"
#include "core/quant/quantized_matrix.h"

namespace ctx {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kMinParallelWork = 1 << 16;  // multiply-adds

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Rows [r0, r1) of y for N input vectors. R rows of W are streamed together so that each load of
// x is reused R times and R*N independent accumulators hide FMA latency (R*N <= 8 registers).
template <int N>
void gemv_rows(const float* w, int64_t in, const float* x, float* y, int64_t out, int64_t r0, int64_t r1) {
  constexpr int R = N <= 2 ? 4 : (N <= 4 ? 2 : 1);
  const int64_t in8 = in & ~int64_t(7);
  int64_t r = r0;
  for (; r + R <= r1; r += R) {
    __m256 acc[R][N];
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < N; ++j) acc[i][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < in8; k += 8) {
      __m256 xv[N];
      for (int j = 0; j < N; ++j) xv[j] = _mm256_loadu_ps(x + j * in + k);
      for (int i = 0; i < R; ++i) {
        const __m256 wv = _mm256_loadu_ps(w + (r + i) * in + k);
        for (int j = 0; j < N; ++j) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
      }
    }
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < N; ++j) {
        float s = hsum(acc[i][j]);
        for (int64_t k = in8; k < in; ++k) s += w[(r + i) * in + k] * x[j * in + k];
        y[j * out + r + i] = s;
      }
  }
  for (; r < r1; ++r)  // leftover rows
    for (int j = 0; j < N; ++j) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t k = 0; k < in8; k += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + r * in + k), _mm256_loadu_ps(x + j * in + k), acc);
      float s = hsum(acc);
      for (int64_t k = in8; k < in; ++k) s += w[r * in + k] * x[j * in + k];
      y[j * out + r] = s;
    }
}

using GemvFn = void (*)(const float*, int64_t, const float*, float*, int64_t, int64_t, int64_t);
constexpr GemvFn kGemv[8] = {gemv_rows<1>, gemv_rows<2>, gemv_rows<3>, gemv_rows<4>,
                             gemv_rows<5>, gemv_rows<6>, gemv_rows<7>, gemv_rows<8>};

}  // namespace

void linear(const WeightMatrix& w, const float* x, int64_t n, float* y, const WeightVector& bias) {
  const int64_t out = w.rows, in = w.cols;
  if (n <= 0) return;
  if (w.quant) {
    CTX_CHECK(w.quant->rows() == out && w.quant->cols() == in);
    w.quant->matmul(x, n, y);
  } else if (n <= 8) {
    const GemvFn fn = kGemv[n - 1];
    // Split rows in chunks of 16 so each thread streams a contiguous block of W.
    const int64_t chunks = (out + 15) / 16;
    // Fork/join costs microseconds (milliseconds when cores are oversubscribed): tiny matrices stay serial.
#pragma omp parallel if (out * in * n >= kMinParallelWork)
    {
      const int nt = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t c0 = chunks * t / nt, c1 = chunks * (t + 1) / nt;
      fn(w.data, in, x, y, out, std::min(out, c0 * 16), std::min(out, c1 * 16));
    }
  } else {
    Eigen::Map<const RowMat> W(w.data, out, in);
    Eigen::Map<const RowMat> X(x, n, in);
    Eigen::Map<RowMat> Y(y, n, out);
    const int threads = Eigen::nbThreads();
    if (out * in * n < kMinParallelWork * 16) Eigen::setNbThreads(1);
    Y.noalias() = X * W.transpose();
    Eigen::setNbThreads(threads);
  }
  if (!bias.empty()) {
    CTX_CHECK(bias.size == out);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < out; ++r) y[i * out + r] += bias.data[r];
  }
}

}  // namespace ctx
