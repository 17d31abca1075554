#include "core/quant/quantized_matrix.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "core/base/error.h"

namespace ctx {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<>;
constexpr int64_t kMinParallelWork = 1 << 16;  // multiply-adds; the same threshold as core/cpu/linear.cc

}  // namespace

QuantizedMatrix::QuantizedMatrix(int64_t rows, int64_t cols) : rows_(rows), cols_(cols) {
  CTX_CHECK(rows > 0 && cols > 0, "quantized matrix of shape [", rows, ", ", cols, "]");
}

int64_t QuantizedMatrix::bytes() const {
  int64_t b = 0;
  for (const PackedBuffer& p : buffers()) b += p.bytes;
  return b;
}

double QuantizedMatrix::bits_per_weight() const { return double(bytes()) * 8.0 / (double(rows_) * double(cols_)); }

void QuantizedMatrix::fused_rows(const float*, int64_t, float*, int64_t, int64_t) const {
  CTX_CHECK(false, format(), " has no fused kernel");
}

void QuantizedMatrix::matmul(const float* x, int64_t n, float* y) const {
  if (n <= 0) return;
  if (n <= 8 && has_fused_kernel()) return matmul_fused(x, n, y);
  matmul_tiled(x, n, y);
}

void QuantizedMatrix::matmul_fused(const float* x, int64_t n, float* y) const {
  CTX_CHECK(n >= 1 && n <= 8);
  for_row_chunks(n, [&](int64_t r0, int64_t r1) { fused_rows(x, n, y, r0, r1); });
}

void QuantizedMatrix::for_row_chunks(int64_t n, const std::function<void(int64_t, int64_t)>& f) const {
  // Chunks of 16 rows: each thread streams one contiguous run of packed rows.
  const int64_t chunks = (rows_ + 15) / 16;
#pragma omp parallel if (rows_ * cols_ * n >= kMinParallelWork)
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t c0 = chunks * t / nt, c1 = chunks * (t + 1) / nt;
    if (c0 < c1) f(c0 * 16, std::min(rows_, c1 * 16));
  }
}

void QuantizedMatrix::matmul_tiled(const float* x, int64_t n, float* y) const {
  const int64_t tiles = (rows_ + kTileRows - 1) / kTileRows;
  Eigen::Map<const RowMat> X(x, n, cols_);
  // Eigen runs single-threaded inside an OpenMP parallel region; threads split the tiles.
#pragma omp parallel if (rows_ * cols_ * n >= kMinParallelWork)
  {
    std::vector<float> tile(size_t(kTileRows * cols_));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; ++t) {
      const int64_t r0 = t * kTileRows, r1 = std::min(rows_, r0 + kTileRows);
      dequantize_rows(r0, r1, tile.data());
      Eigen::Map<const RowMat> W(tile.data(), r1 - r0, cols_);
      Eigen::Map<RowMat, 0, Stride> Y(y + r0, n, r1 - r0, Stride(rows_));
      Y.noalias() = X * W.transpose();
    }
  }
}

}  // namespace ctx
