// A linear layer's weight matrix on the device as the GPU engine computes with it (internal to
// core/cuda): bf16 (the host's float32 rounded) or quantized (gpu_quant_weights.h: the CPU quant
// plugin's own codes and scales).
//   decode   gemv() / gemv_swiglu(): the bf16 GEMV (kernels.h) or the fused dequantize-GEMV
//            (kernels/quant_kernels.h), the weights staying packed in device memory.
//   prefill  gemm(): a cuBLAS bf16 GEMM. A quantized matrix is first dequantized to bf16, a tile of
//            rows at a time, into the caller's scratch buffer, then multiplied by cuBLAS; one GEMM
//            per tile. Prefill over many tokens is compute-bound, so one extra pass over the packed
//            bytes and one write + read of each bf16 tile cost little next to the GEMM, and every
//            format shares cuBLAS's tensor-core kernels instead of needing its own GEMM.
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
  int64_t bytes() const;  // device bytes owned (0 when borrowed)

  // y[r] = (accumulate ? y[r] : 0) + alpha * (W x + bias)[r] (kernels.h launch_gemv).
  void gemv(const GemvInput& in, const bf16* bias, float alpha, bool accumulate, float* y, cudaStream_t stream) const;
  // The stacked [gate; up] matrix: act[r] = swiglu(gate_r, up_r) for r < rows() / 2 (launch_gemv_swiglu).
  void gemv_swiglu(const GemvInput& in, const bf16* bias, bf16* act, cudaStream_t stream) const;
  // out[n, rows] = x[n, cols] W^T in float32 through `blas` (bound to `stream`). A quantized matrix needs
  // `scratch` of scratch_elems >= cols() bf16; tiles of scratch_elems / cols() rows.
  void gemm(cublasHandle_t blas, const bf16* x, int64_t n, float* out, bf16* scratch, int64_t scratch_elems,
            cudaStream_t stream) const;

 private:
  DeviceBuffer<bf16> own_;
  const bf16* bf16_ = nullptr;
  std::unique_ptr<GpuQuantMatrix> quant_;
  int64_t rows_ = 0, cols_ = 0;
};

}  // namespace ctx::cuda
