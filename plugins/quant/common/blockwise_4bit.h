// bitsandbytes' blockwise 4-bit format (functional.py quantize_4bit / dequantize_4bit), shared by the
// `nf4` and `fp4` plugins, which differ only in their 16-value code table:
// * The matrix is flattened row-major and cut into blocks of `blocksize` consecutive weights (the
//   last one may be short; blocks cross row boundaries when cols % blocksize != 0, as in bitsandbytes).
//   absmax[b] = max |w| over block b; code[i] = encode(w[i] / absmax[b]) (the nearest table value).
// * Packing: two codes per byte, element 2k in the high nibble of byte k, element 2k+1 in the low one;
//   ceil(rows * cols / 2) bytes ("codes").
// * absmax: float32 per block ("absmax"), or with double quantization (bitsandbytes'
//   compress_statistics / "nested"): offset = mean(absmax); absmax - offset is quantized blockwise to
//   8 bits with blocksize 256 and the signed dynamic map (create_dynamic_map): "absmax_q" (uint8 per
//   block), "absmax2" (float32 per 256 blocks), "absmax_offset" (one float32). The 4-bit codes are
//   computed with the exact absmax, as in bitsandbytes; dequantization uses the 8-bit one.
// * Dequantized value: table[code] * absmax[b]. codes=bfloat16 rounds the 16 table values to bfloat16
//   first (the codes stay those of the float32 table): the values bitsandbytes' 4-bit GEMV multiplies
//   with a bfloat16 compute dtype (it holds the table as T in shared memory), and one bf16 per code
//   is what lets the GPU GEMV take one tensor-core k slot per weight (core/cuda/kernels/quant_formats.cuh).
// Bits per weight (cols % blocksize == 0): 4 + 32 / blocksize; with double quantization
// 4 + 8 / blocksize + 32 / (256 * blocksize) + 32 / (rows * cols). Code tables are shared constants.
// Kernels: activations stay float32 (bitsandbytes semantics: the result is the float product with the
// dequantized matrix up to float summation order). When cols % blocksize == 0 every row is whole blocks
// and the fused decode kernel runs for n <= 8: per 8 codes, one 32-bit broadcast, two per-lane shifts
// (vpsrlvd / vpsllvd put each element's nibble in bits 0..3 and its bit 3 in the sign bit), two vpermps
// into the 16-entry table held as two 8-float halves, and a blend on bit 3; sum(table[code] * x) is
// accumulated per block and multiplied by the block's absmax once. Four rows (n = 1; two for n = 2)
// are processed together so that each loaded x vector serves all of them, and the next rows' codes are
// prefetched. Larger n use the tiled path through the same decoder; other shapes
// use it with scalar dequantization of a tile.
// activations=q8_0 (an explicit choice; not bitsandbytes): when cols % blocksize == 0, matmul()
// quantizes x to q8_0 blocks of 32 (dx = max|x| / 127 per block) and runs the shared integer kernel
// of q8_kernels.h for every n. Weights enter it as int8 codes through a 16-entry byte table,
// T[i] = round(127 * table[i]) (nearest, half away from zero), applied to the nibbles with one
// vpshufb, and the scale absmax / 127 of the group's block; the nibbles are taken high ones first
// (elements 0, 2, ..., 30, then 1, 3, ..., 31) and x is quantized in that order (Q8Activations::kEvenOdd). Both the activations and the code values
// are approximated, so with e = max_i |T[i] / 127 - table[i]| (nf4: 0.0037, fp4: 0.0039),
// |y - dequantize(W) x| <= sum_c dx_c / 2 * |w_c| + sum_c e * absmax_c * (|x_c| + dx_c / 2)
// (dx_c: the step of column c's activation block; absmax_c: that of w_c's block) plus float rounding.
// Immutable; thread-safe.
#pragma once

#include <immintrin.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/weights.h"
#include "core/quant/quantized_matrix.h"
#include "plugins/quant/common/q8_kernels.h"

namespace ctx::quant {

struct Code4 {
  Code4(std::string name, const std::array<float, 16>& values, uint8_t (*encode)(float normalized));
  std::string name;                   // "nf4", "fp4"
  std::array<float, 16> values;       // dequantized value of each code (normalized to max |v| = 1)
  std::array<float, 16> bf16_values;  // the same rounded to bfloat16, nearest even (codes=bfloat16)
  uint8_t (*encode)(float normalized);  // the code of a value in [-1, 1] (of `values`, either table)
  const std::array<float, 16>& table(bool bf16) const { return bf16 ? bf16_values : values; }
};

// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): 256 sorted values.
const std::array<float, 256>& dynamic_map_8bit();

class Blockwise4BitMatrix final : public QuantizedMatrix {
 public:
  // bf16_codes: dequantize with code.bf16_values (codes=bfloat16) instead of code.values.
  Blockwise4BitMatrix(const WeightMatrix& w, const Code4& code, int64_t blocksize, bool double_quant,
                      bool q8_activations = false, bool bf16_codes = false);

  std::string format() const override;
  std::vector<PackedBuffer> buffers() const override;
  PackedLayout packed_layout() const override;
  void dequantize_rows(int64_t r0, int64_t r1, float* out) const override;
  void matmul(const float* x, int64_t n, float* y) const override;

  float block_absmax(int64_t b) const;

  // Group decoder (fused_kernels.h); valid when cols % blocksize == 0.
  float group_scale(int64_t r, int64_t g) const { return block_absmax((r * cols() + g * 32) >> block_shift_); }
  void load_group(int64_t r, int64_t g, __m256 w[4]) const;
  float value(int64_t r, int64_t c) const;

  // Int8 group decoder (q8_kernels.h); valid when cols % blocksize == 0. Codes in even/odd order: the
  // 16 bytes in both halves, the first shifted by 4 (high nibbles: elements 0, 2, ..., 30), masked,
  // then the byte table T.
  static constexpr auto kActivationOrder = Q8Activations::kEvenOdd;
  const void* group_data(int64_t r, int64_t g) const { return codes_.data() + (r * cols() + g * 32) / 2; }
  __m256i load_i8(int64_t r, int64_t g) const {
    const uint8_t* p = codes_.data() + (r * cols() + g * 32) / 2;
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i nib = _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
    return _mm256_shuffle_epi8(table_i8_, nib);
  }
  float i8_scale(int64_t r, int64_t g) const { return group_scale(r, g) * (1.0f / 127.0f); }

 protected:
  bool has_fused_kernel() const override { return cols() % blocksize_ == 0; }
  void fused_rows(const float* x, int64_t n, float* y, int64_t r0, int64_t r1) const override;

 private:
  template <int N>
  void rows_n(const float* x, float* y, int64_t r0, int64_t r1) const;
  template <int R, int N>
  void rows_kernel(const float* x, float* y, int64_t r) const;  // rows [r, r + R), N rows of x

  const Code4& code_;
  int64_t blocksize_;
  int block_shift_;  // log2(blocksize): no integer division per group
  bool double_quant_, q8_activations_, bf16_codes_;
  const std::array<float, 16>& table_;  // code_.table(bf16_codes_)
  __m256 table_lo_, table_hi_;
  __m256i table_i8_;  // T[i] = round(127 * table[i]) in both 128-bit lanes
  std::vector<uint8_t> codes_;
  std::vector<float> absmax_;      // without double quantization
  std::vector<uint8_t> absmax_q_;  // with it
  std::vector<float> absmax2_;
  float offset_ = 0;
};

}  // namespace ctx::quant

namespace ctx {
struct Catalog;
namespace quant {
// Registers `code.name` in catalog.quant with parameters blocksize (power of two in [32, 4096],
// default 64), double_quant (default false) and codes (float32, default, or bfloat16: the table
// rounded to bfloat16). `code` must outlive the catalog.
void register_blockwise_4bit(Catalog& catalog, const Code4& code, const std::string& help);
}  // namespace quant
}  // namespace ctx
