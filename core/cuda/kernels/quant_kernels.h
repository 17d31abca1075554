// Kernels for quantized weight matrices (internal to core/cuda): the device view of a packed matrix
// (filled by gpu_quant_weights.h from the CPU plugin's own bytes), the fused dequantize-GEMV of decode
// and the dequantization into bf16 that prefill's cuBLAS GEMMs read.
//
// Device layout: every format is read as groups of 32 consecutive weights of a row, group g of row r
// at codes + (r * groups + g) * group_bytes (group_bytes = 32 for int8/q8_0, 16 for q4_0/nf4/fp4), so
// every group starts 16-byte aligned and a lane reads it with one or two 16-byte loads. Scales live in
// their own array (a q4_0 block's 18 bytes are split into its 16 code bytes and its fp16 scale):
//   kInt8   codes int8, rows zero-padded to groups * 32 columns; scales: float absmax[rows] (value =
//           q * (absmax / 127), the CPU's scale())
//   kQ8_0   codes int8 qs, scales: fp16 d [rows * groups]
//   kQ4_0   codes: the blocks' 16 qs bytes (element j low nibble of byte j, j + 16 the high one),
//           scales: fp16 d [rows * groups]
//   kCode4  (nf4, fp4) codes: the plugin's "codes" buffer as is (element 2k in the high nibble of
//           byte k; cols % 32 == 0, so a row is whole groups); scales: float absmax [blocks] or, with
//           double quantization, uint8 absmax_q [blocks] with absmax2 and the dynamic map. Blocks count
//           along the flattened part (see QuantPart), so they may cross rows.
// A stacked matrix (wqkv = [wq; wk; wv]) concatenates its parts' arrays; only kCode4 needs to know
// where a part starts, since its blocks are numbered along each part's own flattened rows.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

enum class QuantFormat : int { kInt8, kQ8_0, kQ4_0, kCode4 };

inline constexpr int kMaxQuantParts = 3;

// A row-stacked part of a kCode4 matrix: its first row, and the offsets of its blocks in the
// concatenated scale arrays (absmax or absmax_q; absmax2), and its double-quantization offset.
struct QuantPart {
  int64_t row0 = 0, block0 = 0, nested0 = 0;
  float offset = 0.f;
};

// Passed by value to the kernels. Pointers are device memory written once at upload (so the kernels
// may read all of it before pdl_wait()).
struct QuantMatrixView {
  QuantFormat format = QuantFormat::kInt8;
  int64_t rows = 0, cols = 0;
  int64_t groups = 0;                   // groups of 32 per row: ceil(cols / 32)
  const uint8_t* codes = nullptr;
  const void* scales = nullptr;
  // kCode4 only:
  int block_shift = 0;                  // log2(blocksize)
  bool double_quant = false;
  const float* absmax2 = nullptr;       // double_quant: [ceil(blocks / 256)] per part, concatenated
  const float* dynamic_map = nullptr;   // double_quant: 256 values
  float code_values[16] = {};
  QuantPart parts[kMaxQuantParts];
  int num_parts = 1;
};

// Decode: y[r] = (accumulate ? y[r] : 0) + alpha * (sum_c W[r, c] * x[c] + bias[r]) for r < w.rows,
// with W the CPU plugin's dequantized values (code * scale, in float32) and x bf16 (GemvInput: given, or
// the fused RMSNorm of a float32 hidden state). bias may be null.
void launch_quant_gemv(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, float alpha, bool accumulate,
                       float* y, cudaStream_t stream);

// SwiGLU fused into the GEMV of the stacked [gate; up] matrix (w.rows = 2 * ff, gate rows first):
// act[r] = swiglu(gate_r + bias[r], up_r + bias[ff + r]) for r < ff, as launch_gemv_swiglu.
void launch_quant_gemv_swiglu(const QuantMatrixView& w, const GemvInput& in, const bf16* bias, bf16* act,
                              cudaStream_t stream);

// Prefill: out[(r - r0) * w.cols + c] = bf16(W[r, c]) for rows [r0, r1), every column.
void launch_dequantize(const QuantMatrixView& w, int64_t r0, int64_t r1, bf16* out, cudaStream_t stream);

}  // namespace ctx::cuda
