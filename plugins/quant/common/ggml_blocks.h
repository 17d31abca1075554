// Shared part of the llama.cpp (ggml) block formats q8_0 and q4_0: 32 weights per block with one
// fp16 scale d, blocks laid out row by row (rows * cols / 32 blocks; cols must be a multiple of 32,
// as ggml requires of a row). A block is {uint16_t d; payload} packed without padding.
// BlockMatrix<Format> holds the blocks and provides the group decoder of fused_kernels.h; Format
// supplies kPayload (bytes), name, quantize_block(const float*, Block&) and
// decode(const Block&, __m256 w[4]) (unscaled values).
// Immutable; thread-safe.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/model/weights.h"
#include "core/quant/quantized_matrix.h"
#include "plugins/quant/common/fused_kernels.h"

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
  void dequantize_rows(int64_t r0, int64_t r1, float* out) const override { dequantize_groups(*this, r0, r1, out); }

  const Block& block(int64_t r, int64_t g) const { return blocks_[size_t(r * (cols() / 32) + g)]; }
  float group_scale(int64_t r, int64_t g) const { return f16_to_f32(block(r, g).d); }
  void load_group(int64_t r, int64_t g, __m256 w[4]) const { Format::decode(block(r, g), w); }
  float value(int64_t, int64_t) const {  // no tail: rows are whole blocks
    CTX_CHECK(false, "ggml rows are whole blocks");
    return 0;
  }

 protected:
  bool has_fused_kernel() const override { return true; }
  void fused_rows(const float* x, int64_t n, float* y, int64_t r0, int64_t r1) const override {
    quant::fused_rows(*this, x, n, y, r0, r1);
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
