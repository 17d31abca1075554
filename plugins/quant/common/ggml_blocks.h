// Shared part of the llama.cpp (ggml) block formats q8_0 and q4_0: 32 weights per block with one
// fp16 scale d, blocks laid out row by row (rows * cols / 32 blocks; cols must be a multiple of 32,
// as ggml requires of a row). A block is {uint16_t d; payload} packed without padding.
// BlockMatrix<Format> holds the blocks and provides the group decoder of fused_kernels.h (used by
// dequantize_rows(), which stays exact); Format supplies kPayload (bytes), name,
// quantize_block(const float*, Block&), decode(const Block&, __m256 w[4]) (unscaled float values) and
// kOffset and the integer codes: with kOffset == 0, load_i8(const Block&) gives the 32 unscaled values
// as int8 in element order (q8_0: [-127, 127]); with kOffset > 0, load_u8(const Block&) gives the
// unsigned codes value + kOffset (q4_0: the nibbles, 0..15, kOffset 8).
//
// matmul() quantizes the activations, as llama.cpp does for these formats (its vec_dot_type q8_0):
// every row of x is cut into blocks of 32, each with dx = max|x| / 127 and qx = round(x / dx) (round
// half to even) as int8 (Q8Activations; dx is kept in float32 where ggml rounds it to fp16). Then for
// every weight block, dot = sum qw * qx is exact in int32 (vpmaddubsw then vpmaddwd: q8_0 on |qw| and
// qx signed like qw, pairs < 2 * 127 * 127 < 32767; q4_0 on the unsigned nibbles u = qw + 8 and qx,
// pairs < 2 * 15 * 127, with the offset folded in as -8 * sum(qx) per activation block), and
// y += float(dot) * (dw * dx) with FMA.
// Consequence: matmul() is NOT the float product of dequantize(): each activation is off by at most
// dx / 2 of its block, so |y - dequantize(W) x| <= sum over blocks of dx_b / 2 * sum_{c in b} |w_c|
// (plus float rounding of the per-block accumulation). dequantize() and dequantize_rows() are exact.
// The same integer kernel runs for every n: rows split across OpenMP threads in runs of 16; within a
// thread, tiles of kTileRows weight rows are multiplied with up to 4 activation rows at a time (each
// weight block unpacked once per 4 activation rows, the tile stays in cache for the next 4).
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

namespace ctx::quant {

// Activation rows quantized to ggml's q8_0 layout, split in arrays: q [n, cols] int8 and one float
// scale d per block of 32 ([n, cols / 32]); value ~= q * d. cols must be a multiple of 32.
// sum[b] = sum of the block's 32 q (for formats whose codes carry an offset, see kOffset below).
struct Q8Activations {
  int64_t n = 0, cols = 0;
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> sum;
  void quantize(const float* x, int64_t n_rows, int64_t n_cols);
  // -offset * sum(q) * d of block b: the correction of a dot product taken with codes q + offset.
  template <int Offset>
  float offset_term(int64_t b) const { return float(-Offset * sum[size_t(b)]) * d[size_t(b)]; }
};

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

  void matmul(const float* x, int64_t n, float* y) const override {
    if (n <= 0) return;
    thread_local Q8Activations buffer;  // reused between calls of one thread (no allocation per token)
    buffer.quantize(x, n, cols());
    const Q8Activations& a = buffer;  // a named reference: inside the lambda `buffer` would be each OpenMP thread's own
    for_row_chunks(n, [&](int64_t r0, int64_t r1) {
      for (int64_t t0 = r0; t0 < r1; t0 += kTileRows) {
        const int64_t t1 = std::min(r1, t0 + kTileRows);
        for (int64_t j = 0; j < n; j += 4) {
          switch (std::min<int64_t>(4, n - j)) {
            case 1: dot_rows<1>(a, j, y, t0, t1); break;
            case 2: dot_rows<2>(a, j, y, t0, t1); break;
            case 3: dot_rows<3>(a, j, y, t0, t1); break;
            default: dot_rows<4>(a, j, y, t0, t1); break;
          }
        }
      }
    });
  }

  const Block& block(int64_t r, int64_t g) const { return blocks_[size_t(r * (cols() / 32) + g)]; }
  float group_scale(int64_t r, int64_t g) const { return f16_to_f32(block(r, g).d); }
  void load_group(int64_t r, int64_t g, __m256 w[4]) const { Format::decode(block(r, g), w); }
  float value(int64_t, int64_t) const {  // no tail: rows are whole blocks
    CTX_CHECK(false, "ggml rows are whole blocks");
    return 0;
  }

 private:
  // y[(j0 + j) * rows + r] for j < NJ, r in [r0, r1): integer block dots with activation rows j0.. .
  template <int NJ>
  void dot_rows(const Q8Activations& a, int64_t j0, float* y, int64_t r0, int64_t r1) const {
    const int64_t nb = cols() / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t r = r0; r < r1; ++r) {
      const Block* wb = &block(r, 0);
      if (r + 1 < r1) _mm_prefetch(reinterpret_cast<const char*>(wb + nb), _MM_HINT_T0);
      __m256 acc[NJ];
      for (int j = 0; j < NJ; ++j) acc[j] = _mm256_setzero_ps();
      float offset_sum[NJ] = {};  // sum over blocks of dw * (-kOffset * sum(qx) * dx)
      for (int64_t b = 0; b < nb; ++b) {
        const float dw = _cvtsh_ss(wb[b].d);
        if constexpr (Format::kOffset != 0) {
          // Unsigned codes u = q + kOffset: vpmaddubsw(u, qx) directly; the offset is a per-block scalar.
          const __m256i u = Format::load_u8(wb[b]);
          for (int j = 0; j < NJ; ++j) {
            const int64_t row = j0 + j, xb = row * nb + b;
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q.data() + xb * 32));
            const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), ones);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * a.d[size_t(xb)]), acc[j]);
            offset_sum[j] = std::fma(dw, a.offset_term<Format::kOffset>(xb), offset_sum[j]);
          }
        } else {
          // Signed codes: |q| as unsigned times qx carrying q's sign.
          const __m256i w = Format::load_i8(wb[b]);
          const __m256i aw = _mm256_sign_epi8(w, w);
          for (int j = 0; j < NJ; ++j) {
            const int64_t row = j0 + j, xb = row * nb + b;
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.q.data() + xb * 32));
            const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(xv, w)), ones);
            acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * a.d[size_t(xb)]), acc[j]);
          }
        }
      }
      for (int j = 0; j < NJ; ++j) acc[j] = _mm256_add_ps(acc[j], _mm256_setr_ps(offset_sum[j], 0, 0, 0, 0, 0, 0, 0));
      for (int j = 0; j < NJ; ++j) y[(j0 + j) * rows() + r] = vec::hsum(acc[j]);
    }
  }

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
