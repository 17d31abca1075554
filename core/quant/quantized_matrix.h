// A linear layer's weight matrix W [rows, cols] (nn.Linear layout [out_features, in_features]) held
// in a quantized format, with its own matmul kernels.
//
// Contract:
// * bytes() is every byte the object holds for W: packed codes plus scales, offsets and outlier data
//   (the sum of buffers()); format-wide constants (code tables) are shared and not counted.
//   bits_per_weight() = bytes() * 8 / (rows * cols).
// * dequantize_rows() writes the reference float values of rows [r0, r1) ([r1 - r0, cols] row-major);
//   dequantize() is all rows. Tests compare matmul() with a float64 product of these values.
// * matmul(x, n, y) computes y[n, rows] = x[n, cols] * W^T without ever materialising the dequantized
//   matrix: for n <= 8 (decode) a fused kernel streams the packed weights once, split by output rows
//   across OpenMP threads (serial below a work threshold, so tiny matrices pay no fork/join); for larger
//   n (prefill) each thread dequantizes a tile of kTileRows rows into a thread-local buffer and
//   multiplies it with Eigen. A format may override matmul() entirely (llm_int8, q8_0 and q4_0
//   quantize the activations, so their results differ from the float product within bounds that
//   their headers state). Formats whose packed layout does not split at row boundaries use the
//   tiled path for every n.
// Immutable after construction; matmul() and dequantize() are reentrant and thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/quant/packed_layout.h"

namespace ctx {

// One named array of the packed representation ("codes", "absmax", "blocks", ...), for bytes()
// and for tests that check the exact layout.
struct PackedBuffer {
  std::string name;
  const void* data = nullptr;
  int64_t bytes = 0;
};

class QuantizedMatrix {
 public:
  static constexpr int64_t kTileRows = 32;

  virtual ~QuantizedMatrix() = default;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Short format name with its parameters, e.g. "nf4(blocksize=64,double_quant)".
  virtual std::string format() const = 0;
  virtual std::vector<PackedBuffer> buffers() const = 0;
  // What buffers() hold, for readers outside the plugin (the GPU upload); kNone by default.
  virtual PackedLayout packed_layout() const { return {}; }
  int64_t bytes() const;
  double bits_per_weight() const;

  virtual void dequantize_rows(int64_t r0, int64_t r1, float* out) const = 0;
  void dequantize(float* out) const { dequantize_rows(0, rows_, out); }

  virtual void matmul(const float* x, int64_t n, float* y) const;

 protected:
  QuantizedMatrix(int64_t rows, int64_t cols);

  // The fused decode kernel: y[j * rows + r] for j < n (1 <= n <= 8) and r in [r0, r1), where r0 is a
  // multiple of 16. Only called when has_fused_kernel().
  virtual bool has_fused_kernel() const { return false; }
  virtual void fused_rows(const float* x, int64_t n, float* y, int64_t r0, int64_t r1) const;

  // The two drivers of matmul(), for formats that override it.
  void matmul_fused(const float* x, int64_t n, float* y) const;
  void matmul_tiled(const float* x, int64_t n, float* y) const;
  // The row split of matmul_fused: calls f(r0, r1) once per OpenMP thread with a contiguous run of
  // rows (r0 a multiple of 16), in parallel when rows * cols * n reaches the work threshold.
  void for_row_chunks(int64_t n, const std::function<void(int64_t r0, int64_t r1)>& f) const;

 private:
  int64_t rows_, cols_;
};

}  // namespace ctx
