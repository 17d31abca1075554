// A quantized weight matrix on the device (internal to core/cuda): the codes and scales that the CPU
// quant plugin computed, their values unchanged but re-laid out in the GEMV's tensor-core fragment
// order (kernels/quant_kernels.h gives the layout), so that the GPU computes with exactly the CPU
// reference's dequantized values. nf4/fp4 with double quantization keep their block absmax as the
// float the CPU computes from the 8-bit code (4 bytes per block on the device instead of 1).
// The source matrices are read through QuantizedMatrix::buffers() and packed_layout()
// (core/quant/packed_layout.h); core never includes a plugin.
//
// Supported: int8 (kRowwiseInt8, any shape), llm_int8 (kLlmInt8: int8's bytes, with the view's
// int8_activations and outlier threshold: the kernels decompose the input per call as the plugin does),
// q8_0 and q4_0 (kGgmlQ8_0/Q4_0), nf4 and fp4 (kBlockwise4Bit, any blocksize, with or without double
// quantization, cols % 32 == 0). Anything else (kNone; nf4/fp4 with cols % 32 != 0; a stack mixing
// formats or llm_int8 thresholds) is ctx::Unsupported naming the matrix, its format and the reason.
// Immutable after construction.
#pragma once

#include <string>
#include <vector>

#include "core/cuda/device_allocator.h"
#include "core/cuda/kernels/quant_kernels.h"
#include "core/quant/quantized_matrix.h"

namespace ctx::cuda {

// The stack's arrays in the device layout, on the host: what GpuQuantMatrix uploads (the view's
// pointers are left null). Exposed for tests/gpu/gpu_quant_layout_test.cu, which decodes them on the
// host. Throws as the constructor below.
struct PackedQuantHost {
  QuantMatrixView view;
  std::vector<uint8_t> codes, scales;
};
PackedQuantHost pack_quantized(const std::vector<const QuantizedMatrix*>& parts, const std::string& what);

class GpuQuantMatrix {
 public:
  // The row-wise stack of `parts` (1 to kMaxQuantParts matrices of one format and equal cols), e.g.
  // [wq; wk; wv]. `what` names the matrix in errors.
  GpuQuantMatrix(DeviceAllocator& alloc, const std::vector<const QuantizedMatrix*>& parts, const std::string& what);

  const QuantMatrixView& view() const { return view_; }
  // Device bytes held: codes and scales (with the padding to whole tiles and chunks).
  int64_t bytes() const { return codes_.bytes() + scales_.bytes(); }

 private:
  DeviceBuffer<uint8_t> codes_, scales_;
  QuantMatrixView view_;
};

}  // namespace ctx::cuda
