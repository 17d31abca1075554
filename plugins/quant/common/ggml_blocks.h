// Shared part of the llama.cpp (ggml) block formats q8_0 and q4_0: 32 weights per block with one
// fp16 scale d, blocks laid out row by row (rows * cols / 32 blocks; cols must be a multiple of 32,
// as ggml requires of a row). A block is {uint16_t d; payload} packed without padding.
// BlockMatrix<Format> holds the blocks and provides the float group decoder of fused_kernels.h (used
// by dequantize_rows(), which stays exact) and the int8 group decoder of q8_kernels.h; Format supplies
// kPayload (bytes), kName, kPacked (its core/quant/packed_layout.h kind), quantize_block(const float*, Block&), decode(const Block&, __m256 w[4])
// (unscaled float values) and load_i8(const Block&): the 32 unscaled values as int8 in element order
// (q8_0: [-127, 127]; q4_0: nibble - 8, [-8, 7]).
//
// matmul() quantizes the activations, as llama.cpp does for these formats (its vec_dot_type q8_0):
// every row of x is cut into blocks of 32, each with dx = max|x| / 127 and qx = round(x / dx) (round
// half to even) as int8 (Q8Activations; dx is kept in float32 where ggml rounds it to fp16). Then for
// every weight block dot = sum qw * qx is exact in int32 and y += float(dot) * (dw * dx) with FMA
// (q8_kernels.h, the kernel shared with int8/nf4/fp4 activations=q8_0).
// Consequence: matmul() is NOT the float product of dequantize(): each activation is off by at most
// dx / 2 of its block, so |y - dequantize(W) x| <= sum over blocks of dx_b / 2 * sum_{c in b} |w_c|
// (plus float rounding of the per-block accumulation). dequantize() and dequantize_rows() are exact.
// The same integer kernel runs for every n.
// Immutable; thread-safe.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/model/weights.h"
#include "core/quant/quantized_matrix.h"
#include "core/quant/quantizer.h"
#include "plugins/quant/common/fused_kernels.h"
#include "plugins/quant/common/q8_kernels.h"

namespace ctx::quant {

template <int Payload>
struct GgmlBlock {
  uint16_t d;  // fp16 bits
  uint8_t qs[Payload];
};

template <class Format>
class BlockMatrix final : public QuantizedMatrix {
 public:
  using Block = GgmlBlock<Format::kPayload>;
  static_assert(sizeof(Block) == 2 + Format::kPayload, "ggml blocks are packed");

  explicit BlockMatrix(const WeightMatrix& w) : QuantizedMatrix(w.rows, w.cols) {
    if (w.cols % 32 != 0)
      throw Unsupported(str_cat(Format::kName, " needs cols divisible by 32 (ggml blocks of 32 weights per row); matrix is [",
                                w.rows, ", ", w.cols, "]"));
    blocks_.resize(size_t(w.rows * w.cols / 32));
    for (size_t b = 0; b < blocks_.size(); ++b) Format::quantize_block(w.data + b * 32, blocks_[b]);
  }

  std::string format() const override { return Format::kName; }
  std::vector<PackedBuffer> buffers() const override {
    return {{"blocks", blocks_.data(), int64_t(blocks_.size() * sizeof(Block))}};
  }
  PackedLayout packed_layout() const override { return {Format::kPacked}; }
  void dequantize_rows(int64_t r0, int64_t r1, float* out) const override { dequantize_groups(*this, r0, r1, out); }

  void matmul(const float* x, int64_t n, float* y) const override {
    if (n <= 0) return;
    const Q8Activations& a = Q8Activations::of(x, n, cols());
    for_row_chunks(n, [&](int64_t r0, int64_t r1) { q8_dot_rows(*this, a, y, r0, r1); });
  }

  const Block& block(int64_t r, int64_t g) const { return blocks_[size_t(r * (cols() / 32) + g)]; }
  float group_scale(int64_t r, int64_t g) const { return f16_to_f32(block(r, g).d); }
  void load_group(int64_t r, int64_t g, __m256 w[4]) const { Format::decode(block(r, g), w); }
  // Int8 group decoder (q8_kernels.h).
  static constexpr auto kActivationOrder = Q8Activations::kElements;
  const void* group_data(int64_t r, int64_t g) const { return blocks_.data() + r * (cols() / 32) + g; }  // may point past the end (prefetch only)
  __m256i load_i8(int64_t r, int64_t g) const { return Format::load_i8(block(r, g)); }
  float i8_scale(int64_t r, int64_t g) const { return _cvtsh_ss(block(r, g).d); }
  float value(int64_t, int64_t) const {  // no tail: rows are whole blocks
    CTX_CHECK(false, "ggml rows are whole blocks");
    return 0;
  }

 private:
  std::vector<Block> blocks_;
};

template <class Format>
class BlockQuantizer final : public Quantizer {
 public:
  std::shared_ptr<const QuantizedMatrix> quantize(const WeightMatrix& w) const override {
    return std::make_shared<BlockMatrix<Format>>(w);
  }
};

}  // namespace ctx::quant
