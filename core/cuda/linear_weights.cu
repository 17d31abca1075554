#include "core/cuda/linear_weights.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/quant_kernels.h"

namespace ctx::cuda {

namespace {

// Row-major out[n, m] (row stride ldc) = x[n, cols] A^T, A a row-major [m, cols] bf16 matrix: the
// column-major out^T = A x^T.
void gemm_bf16(cublasHandle_t blas, const bf16* a, int64_t m, int64_t cols, const bf16* x, int64_t n, float* out,
               int64_t ldc) {
  const float one = 1.f, zero = 0.f;
  CTX_CUBLAS_CHECK(cublas().gemm_ex(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(m), int(n), int(cols), &one, a, CUDA_R_16BF,
                                    int(cols), x, CUDA_R_16BF, int(cols), &zero, out, CUDA_R_32F, int(ldc),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// 8-bit codes (int8, q8_0) with an input too long for registers (quant_gemv_input_in_registers): on
// an H100 the 7B's int8 down_proj took 17.05 us reading its input in place against 18.43 staged,
// q4_0's 11.35 against 10.86 (bench/RESULTS.md, tenth session), so 4-bit codes stay staged.
bool read_input_in_place(const QuantMatrixView& w) {
  const bool eight_bit = w.format == QuantFormat::kInt8 || w.format == QuantFormat::kQ8_0;
  return eight_bit && !quant_gemv_input_in_registers(w) && quant_gemv_rows_supported(w, 1);
}

}  // namespace

LinearWeights LinearWeights::upload(DeviceAllocator& alloc, const std::vector<const WeightMatrix*>& parts,
                                    const char* what) {
  LinearWeights w;
  CTX_CHECK(!parts.empty(), what, ": no matrices");
  const WeightMatrix& first = *parts.front();
  w.cols_ = first.cols;
  for (const WeightMatrix* m : parts) {
    if (m->empty()) throw Unsupported(str_cat("GPU engine: the model has no ", what, " matrix (hybrid layers?)"));
    if (bool(m->quant) != bool(first.quant))
      throw Unsupported(str_cat("GPU engine: ", what, " mixes quantized and float32 projections"));
    CTX_CHECK(m->cols == first.cols, what, ": stacked matrices with ", m->cols, " and ", first.cols, " columns");
    w.rows_ += m->rows;
  }
  if (first.quant) {
    std::vector<const QuantizedMatrix*> q;
    for (const WeightMatrix* m : parts) q.push_back(m->quant.get());
    w.quant_ = std::make_unique<GpuQuantMatrix>(alloc, q, what);
    return w;
  }
  std::vector<float> rows;
  if (parts.size() > 1) {
    rows.reserve(size_t(w.rows_ * w.cols_));
    for (const WeightMatrix* m : parts) rows.insert(rows.end(), m->data, m->data + m->rows * m->cols);
  }
  w.own_ = upload_bf16(alloc, parts.size() > 1 ? rows.data() : first.data, w.rows_ * w.cols_);
  w.bf16_ = w.own_.get();
  return w;
}

LinearWeights LinearWeights::borrow(const bf16* weights, int64_t rows, int64_t cols) {
  LinearWeights w;
  w.bf16_ = weights, w.rows_ = rows, w.cols_ = cols;
  return w;
}

int64_t LinearWeights::bytes() const { return quant_ ? quant_->bytes() : own_.bytes(); }

int64_t LinearWeights::gemv(const GemvInput& in, const bf16* bias, float alpha, bool accumulate, float* y,
                            cudaStream_t stream, bool stage_input, float* sumsq) const {
  static const bool stage = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_STAGE_INPUT");
    return e && std::string(e) == "1";
  }();
  float* const parts = quant_ ? sumsq : nullptr;  // the bf16 GEMV leaves none
  if (quant_ && in.x && !in.hidden && !stage && !stage_input && read_input_in_place(quant_->view())) {
    launch_quant_gemv_rows(quant_->view(), in.x, 1, bias, alpha, accumulate, y, stream, parts);
  } else if (quant_) {
    launch_quant_gemv(quant_->view(), in, bias, alpha, accumulate, y, stream, parts);
  } else {
    launch_gemv(bf16_, in, rows_, cols_, bias, alpha, accumulate, y, stream);
  }
  return parts ? sumsq_parts() : 0;
}

int64_t LinearWeights::sumsq_parts() const { return quant_ ? quant_gemv_sumsq_parts(quant_->view()) : 0; }

void LinearWeights::gemv_swiglu(const GemvInput& in, const bf16* bias, bf16* act, cudaStream_t stream) const {
  if (quant_) return launch_quant_gemv_swiglu(quant_->view(), in, bias, act, stream);
  launch_gemv_swiglu(bf16_, in, rows_ / 2, cols_, bias, act, stream);
}

bool LinearWeights::rows_supported(int64_t n) const {
  // CTXLAB_QGEMV_ROWS=0: the dequantize + GEMM path for every n > 1 (same-process comparisons).
  static const bool enabled = [] {
    const char* e = std::getenv("CTXLAB_QGEMV_ROWS");
    return !(e && std::string(e) == "0");
  }();
  return enabled && quant_ && quant_gemv_rows_supported(quant_->view(), n);
}

void LinearWeights::gemv_rows(const bf16* x, int64_t n, const bf16* bias, float alpha, bool accumulate, float* y,
                              cudaStream_t stream) const {
  CTX_CHECK(rows_supported(n), "batched GEMV of ", n, " rows over these weights");
  launch_quant_gemv_rows(quant_->view(), x, n, bias, alpha, accumulate, y, stream);
}

void LinearWeights::gemv_swiglu_rows(const bf16* x, int64_t n, const bf16* bias, bf16* act, cudaStream_t stream) const {
  CTX_CHECK(rows_supported(n), "batched SwiGLU GEMV of ", n, " rows over these weights");
  launch_quant_gemv_swiglu_rows(quant_->view(), x, n, bias, act, stream);
}

void LinearWeights::gemm(cublasHandle_t blas, const bf16* x, int64_t n, float* out, const GemmScratch& scratch,
                         cudaStream_t stream) const {
  if (!quant_) return gemm_bf16(blas, bf16_, rows_, cols_, x, n, out, rows_);
  CTX_CHECK(scratch.tiles && scratch.tile_elems >= cols_, "dequantization scratch of ", scratch.tile_elems, " for ",
            cols_, " columns");
  const QuantMatrixView& view = quant_->view();
  if (view.int8_activations) {
    CTX_CHECK(scratch.inputs && scratch.input_elems >= n * cols_ && scratch.columns && scratch.column_count >= cols_,
              "LLM.int8() input scratch of ", scratch.input_elems, " (", scratch.column_count, " columns) for ", n,
              " rows of ", cols_);
    launch_int8_activations(x, n, cols_, view.outlier_threshold, scratch.columns, scratch.inputs, stream);
    x = scratch.inputs;
  }
  const int64_t tile = std::min(rows_, scratch.tile_elems / cols_);
  for (int64_t r0 = 0; r0 < rows_; r0 += tile) {
    const int64_t r1 = std::min(rows_, r0 + tile);
    launch_dequantize(view, r0, r1, scratch.tiles, stream);
    gemm_bf16(blas, scratch.tiles, r1 - r0, cols_, x, n, out + r0, rows_);
  }
}

}  // namespace ctx::cuda
