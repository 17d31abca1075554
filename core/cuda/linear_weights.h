// A linear layer's weight matrix on the device as the GPU engine computes with it (internal to
// core/cuda): bf16 (the host's float32 rounded) or quantized (gpu_quant_weights.h: the CPU quant
// plugin's own codes and scales).
//   decode   gemv() / gemv_swiglu(): the bf16 GEMV (kernels.h) or the fused dequantize-GEMV
//            (kernels/quant_kernels.h), the weights staying packed in device memory; a few rows at
//            once (batched decode, short chunks) through gemv_rows() / gemv_swiglu_rows() on
//            quantized weights, one pass over the packed bytes for up to 8 rows.
//   prefill  gemm(): a cuBLAS bf16 GEMM. A quantized matrix is first dequantized to bf16, a tile of
//            rows at a time, into the caller's scratch buffer, then multiplied by cuBLAS; one GEMM
//            per tile. Prefill over many tokens is compute-bound, so one extra pass over the packed
//            bytes and one write + read of each bf16 tile cost little next to the GEMM, and every
//            format shares cuBLAS's tensor-core kernels instead of needing its own GEMM. llm_int8 first
//            stages its input (LLM.int8()'s decomposition, kernels/int8_activations.cuh) into scratch.
// Movable, not copyable; not thread-safe.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "core/cuda/device_allocator.h"
#include "core/cuda/gpu_quant_weights.h"
#include "core/cuda/kernels/kernels.h"
#include "core/model/weights.h"

namespace ctx::cuda {

// The caller's device scratch for gemm() on quantized weights (sized for its largest call).
struct GemmScratch {
  bf16* tiles = nullptr;  // dequantized rows: tile_elems >= cols, tiles of tile_elems / cols rows
  int64_t tile_elems = 0;
  bf16* inputs = nullptr;  // int8_activations(): the staged input, input_elems >= n * cols
  int64_t input_elems = 0;
  uint8_t* columns = nullptr;  // int8_activations(): outlier column flags, column_count >= cols
  int64_t column_count = 0;
};

class LinearWeights {
 public:
  LinearWeights() = default;
  // The row-wise stack of `parts` (equal cols): all float32 (uploaded as bf16) or all quantized in one
  // format. Throws ctx::Unsupported naming `what` for an empty part (a model without this matrix), a
  // mix of float and quantized parts, or a format the GPU cannot run (gpu_quant_weights.h).
  static LinearWeights upload(DeviceAllocator& alloc, const std::vector<const WeightMatrix*>& parts, const char* what);
  // A bf16 matrix owned elsewhere (the tied classifier reads the embedding table).
  static LinearWeights borrow(const bf16* w, int64_t rows, int64_t cols);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool quantized() const { return quant_ != nullptr; }
  // llm_int8: gemm() needs GemmScratch::inputs and columns.
  bool int8_activations() const { return quant_ && quant_->view().int8_activations; }
  int64_t bytes() const;  // device bytes owned (0 when borrowed)
  // The packed matrix as the quantized kernels take it (launch_quant_gemv_chain); null for bf16.
  const QuantMatrixView* quant_view() const { return quant_ ? &quant_->view() : nullptr; }

  // y[r] = (accumulate ? y[r] : 0) + alpha * (W x + bias)[r] (kernels.h launch_gemv). 8-bit quantized
  // weights of more than 4096 columns and an input given as is (in.x, no fused RMSNorm): the batched
  // kernel's one-row form, which reads the input from global memory (L2) chunk by chunk instead of
  // staging it in shared memory, with the same outputs bit for bit (quant_kernels.h); stage_input (or
  // CTXLAB_QGEMV_STAGE_INPUT=1, for same-process comparisons): the staged kernel.
  // sumsq (may be null; at least sumsq_parts() floats): quantized weights also leave the sums of squares
  // of y's tiles there, for the GEMV that normalizes y next (GemvInput::sumsq). Returns how many partial
  // sums were written: sumsq_parts(), or 0 (no sumsq, or bf16 weights, whose GEMV leaves none).
  int64_t gemv(const GemvInput& in, const bf16* bias, float alpha, bool accumulate, float* y, cudaStream_t stream,
               bool stage_input = false, float* sumsq = nullptr) const;
  int64_t sumsq_parts() const;
  // The stacked [gate; up] matrix: act[r] = swiglu(gate_r, up_r) for r < rows() / 2 (launch_gemv_swiglu).
  void gemv_swiglu(const GemvInput& in, const bf16* bias, bf16* act, cudaStream_t stream) const;
  // n > 1 input rows x [n][cols] in one pass over quantized weights (quant_kernels.h
  // launch_quant_gemv_rows: each row's outputs as gemv() gives them): y [n][rows()], act [n][rows() / 2].
  // When rows_supported(n) is false (bf16 weights, llm_int8, cols % 64 != 0, n > 8) the caller uses gemm().
  bool rows_supported(int64_t n) const;
  void gemv_rows(const bf16* x, int64_t n, const bf16* bias, float alpha, bool accumulate, float* y,
                 cudaStream_t stream) const;
  void gemv_swiglu_rows(const bf16* x, int64_t n, const bf16* bias, bf16* act, cudaStream_t stream) const;
  // out[n, rows] = x[n, cols] W^T in float32 through `blas` (bound to `stream`); llm_int8: LLM.int8()'s
  // product of x. A quantized matrix needs scratch.tiles, llm_int8 also inputs and columns (GemmScratch).
  void gemm(cublasHandle_t blas, const bf16* x, int64_t n, float* out, const GemmScratch& scratch,
            cudaStream_t stream) const;

 private:
  DeviceBuffer<bf16> own_;
  const bf16* bf16_ = nullptr;
  std::unique_ptr<GpuQuantMatrix> quant_;
  int64_t rows_ = 0, cols_ = 0;
};

}  // namespace ctx::cuda
