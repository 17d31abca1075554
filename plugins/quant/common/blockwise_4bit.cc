#include "plugins/quant/common/blockwise_4bit.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/plugin/catalog.h"
#include "core/quant/quantize_model.h"
#include "plugins/quant/common/fused_kernels.h"
#include "plugins/quant/common/q8_kernels.h"
#include "plugins/attention/common/vec_ops.h"

namespace ctx::quant {
namespace {

constexpr int64_t kNestedBlock = 256;  // bitsandbytes quantizes the absmax with blocksize 256

uint8_t nearest_dynamic(float v) {
  const auto& m = dynamic_map_8bit();
  const auto it = std::lower_bound(m.begin(), m.end(), v);
  if (it == m.begin()) return 0;
  if (it == m.end()) return 255;
  const auto lo = it - 1;
  return uint8_t((v - *lo <= *it - v ? lo : it) - m.begin());
}

}  // namespace

Code4::Code4(std::string name, const std::array<float, 16>& values, uint8_t (*encode)(float))
    : name(std::move(name)), values(values), bf16_values(values), encode(encode) {
  for (float& v : bf16_values) v = bf16_to_f32(f32_to_bf16(v));
}

const std::array<float, 256>& dynamic_map_8bit() {
  // Seven decades 10^-6 .. 10^0; decade i holds the midpoints of 2^i equal intervals of [0.1, 1],
  // with both signs; plus 0 and 1 (2 * 127 + 2 = 256 values), sorted.
  static const std::array<float, 256> map = [] {
    std::vector<float> v;
    for (int i = 0; i < 7; ++i) {
      const int k = 1 << i;
      for (int m = 0; m < k; ++m) {
        const float lo = 0.1f + 0.9f * float(m) / float(k), hi = 0.1f + 0.9f * float(m + 1) / float(k);
        const float value = float(std::pow(10.0, -6 + i)) * ((lo + hi) / 2.0f);
        v.push_back(value);
        v.push_back(-value);
      }
    }
    v.push_back(0.0f);
    v.push_back(1.0f);
    std::sort(v.begin(), v.end());
    std::array<float, 256> a{};
    CTX_CHECK(v.size() == a.size());
    std::copy(v.begin(), v.end(), a.begin());
    return a;
  }();
  return map;
}

Blockwise4BitMatrix::Blockwise4BitMatrix(const WeightMatrix& w, const Code4& code, int64_t blocksize, bool double_quant,
                                         bool q8_activations, bool bf16_codes)
    : QuantizedMatrix(w.rows, w.cols),
      code_(code),
      blocksize_(blocksize),
      block_shift_(std::countr_zero(uint64_t(blocksize))),
      double_quant_(double_quant),
      q8_activations_(q8_activations && w.cols % blocksize == 0),
      bf16_codes_(bf16_codes),
      table_(code.table(bf16_codes)) {
  CTX_CHECK(blocksize >= 32 && (blocksize & (blocksize - 1)) == 0, "blocksize ", blocksize, " is not a power of two >= 32");
  table_lo_ = _mm256_loadu_ps(table_.data());
  table_hi_ = _mm256_loadu_ps(table_.data() + 8);
  alignas(32) int8_t t[32];
  for (int i = 0; i < 32; ++i) t[i] = int8_t(std::lround(127.0f * table_[size_t(i % 16)]));
  table_i8_ = _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
  const int64_t n = w.rows * w.cols, blocks = (n + blocksize - 1) / blocksize;
  codes_.assign(size_t((n + 1) / 2), 0);
  std::vector<float> absmax(static_cast<size_t>(blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * blocksize, i1 = std::min(n, i0 + blocksize);
    float amax = 0;
    for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(w.data[i]));
    absmax[size_t(b)] = amax;
    const float inv = amax > 0 ? 1.0f / amax : 0.0f;  // bitsandbytes multiplies by the reciprocal
    for (int64_t i = i0; i < i1; ++i) {
      const uint8_t q = code.encode(w.data[i] * inv) & 0xF;
      codes_[size_t(i / 2)] |= (i % 2 == 0) ? uint8_t(q << 4) : q;
    }
  }
  if (!double_quant) {
    absmax_ = std::move(absmax);
    return;
  }
  double sum = 0;
  for (float a : absmax) sum += a;
  offset_ = float(sum / double(blocks));
  absmax_q_.resize(size_t(blocks));
  absmax2_.resize(size_t((blocks + kNestedBlock - 1) / kNestedBlock));
  for (size_t g = 0; g < absmax2_.size(); ++g) {
    const size_t b0 = g * kNestedBlock, b1 = std::min(size_t(blocks), b0 + kNestedBlock);
    float amax = 0;
    for (size_t b = b0; b < b1; ++b) amax = std::max(amax, std::fabs(absmax[b] - offset_));
    absmax2_[g] = amax;
    const float inv = amax > 0 ? 1.0f / amax : 0.0f;
    for (size_t b = b0; b < b1; ++b) absmax_q_[b] = nearest_dynamic((absmax[b] - offset_) * inv);
  }
}

std::string Blockwise4BitMatrix::format() const {
  return str_cat(code_.name, "(blocksize=", blocksize_, double_quant_ ? ",double_quant" : "",
                 bf16_codes_ ? ",codes=bfloat16" : "", q8_activations_ ? ",activations=q8_0)" : ")");
}

void Blockwise4BitMatrix::matmul(const float* x, int64_t n, float* y) const {
  if (n <= 0) return;
  if (!q8_activations_) return QuantizedMatrix::matmul(x, n, y);
  const Q8Activations& a = Q8Activations::of(x, n, cols(), kActivationOrder);
  for_row_chunks(n, [&](int64_t r0, int64_t r1) { q8_dot_rows(*this, a, y, r0, r1); });
}

std::vector<PackedBuffer> Blockwise4BitMatrix::buffers() const {
  std::vector<PackedBuffer> b = {{"codes", codes_.data(), int64_t(codes_.size())}};
  if (!double_quant_) {
    b.push_back({"absmax", absmax_.data(), int64_t(absmax_.size() * 4)});
  } else {
    b.push_back({"absmax_q", absmax_q_.data(), int64_t(absmax_q_.size())});
    b.push_back({"absmax2", absmax2_.data(), int64_t(absmax2_.size() * 4)});
    b.push_back({"absmax_offset", &offset_, 4});
  }
  return b;
}

PackedLayout Blockwise4BitMatrix::packed_layout() const {
  return {PackedKind::kBlockwise4Bit, blocksize_, double_quant_, table_.data(), dynamic_map_8bit().data()};
}

float Blockwise4BitMatrix::block_absmax(int64_t b) const {
  if (!double_quant_) return absmax_[size_t(b)];
  // One rounding (an explicit fma), so that every compiler and the GPU kernels give the same scale.
  return std::fma(dynamic_map_8bit()[absmax_q_[size_t(b)]], absmax2_[size_t(b / kNestedBlock)], offset_);
}

float Blockwise4BitMatrix::value(int64_t r, int64_t c) const {
  const int64_t i = r * cols() + c;
  const uint8_t byte = codes_[size_t(i / 2)];
  return table_[(i % 2 == 0) ? byte >> 4 : byte & 0xF] * block_absmax(i / blocksize_);
}

namespace {

// Lane i = table[code of element i] for the 8 codes in the 4 bytes at p (bitsandbytes order: element
// 2k in the high nibble of byte k). The word is broadcast to every lane and shifted per lane so that
// the element's nibble lands in bits 0..3 (vpermps reads bits 0..2) and its bit 3 in bit 31 (the
// blend selector): no shuffle besides the two lookups.
inline __m256 decode8(const uint8_t* p, __m256 lo, __m256 hi) {
  uint32_t word;
  std::memcpy(&word, p, 4);
  const __m256i v = _mm256_set1_epi32(int(word));
  const __m256i idx = _mm256_srlv_epi32(v, _mm256_setr_epi32(4, 0, 12, 8, 20, 16, 28, 24));
  const __m256i sel = _mm256_sllv_epi32(v, _mm256_setr_epi32(24, 28, 16, 20, 8, 12, 0, 4));
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx), _mm256_castsi256_ps(sel));
}

}  // namespace

void Blockwise4BitMatrix::load_group(int64_t r, int64_t g, __m256 w[4]) const {
  const uint8_t* p = codes_.data() + (r * cols() + g * 32) / 2;
  for (int k = 0; k < 4; ++k) w[k] = decode8(p + 4 * k, table_lo_, table_hi_);
}

template <int R, int N>
void Blockwise4BitMatrix::rows_kernel(const float* x, float* y, int64_t r) const {
  const int64_t cols = this->cols(), blocks = cols / blocksize_, row_bytes = cols / 2, block_bytes = blocksize_ / 2;
  const uint8_t* code = codes_.data() + r * row_bytes;
  const __m256 lo = table_lo_, hi = table_hi_;
  __m256 acc[R][N];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < N; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b, code += block_bytes) {
    for (int i = 0; i < R; ++i)  // the next rows, one line of each per block
      _mm_prefetch(reinterpret_cast<const char*>(code + (R + i) * row_bytes), _MM_HINT_T0);
    // sum(table[code] * x) over the block, then one multiply by its absmax.
    __m256 sum[R][N];
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < N; ++j) sum[i][j] = _mm256_setzero_ps();
    const float* xb = x + b * blocksize_;
    for (int64_t k = 0; k < block_bytes; k += 4) {
      __m256 w[R];
      for (int i = 0; i < R; ++i) w[i] = decode8(code + i * row_bytes + k, lo, hi);
      for (int j = 0; j < N; ++j) {
        const __m256 xv = _mm256_loadu_ps(xb + j * cols + 2 * k);  // shared by the R rows
        for (int i = 0; i < R; ++i) sum[i][j] = _mm256_fmadd_ps(w[i], xv, sum[i][j]);
      }
    }
    for (int i = 0; i < R; ++i) {
      const __m256 s = _mm256_set1_ps(block_absmax((r + i) * blocks + b));
      for (int j = 0; j < N; ++j) acc[i][j] = _mm256_fmadd_ps(sum[i][j], s, acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < N; ++j) y[j * rows() + r + i] = vec::hsum(acc[i][j]);
}

template <int N>
void Blockwise4BitMatrix::rows_n(const float* x, float* y, int64_t r0, int64_t r1) const {
  constexpr int R = N == 1 ? 4 : N == 2 ? 2 : 1;  // R * N accumulators stay in registers
  int64_t r = r0;
  for (; r + R <= r1; r += R) rows_kernel<R, N>(x, y, r);
  for (; r < r1; ++r) rows_kernel<1, N>(x, y, r);
}

void Blockwise4BitMatrix::dequantize_rows(int64_t r0, int64_t r1, float* out) const {
  if (has_fused_kernel()) return dequantize_groups(*this, r0, r1, out);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t c = 0; c < cols(); ++c) out[(r - r0) * cols() + c] = value(r, c);
}

void Blockwise4BitMatrix::fused_rows(const float* x, int64_t n, float* y, int64_t r0, int64_t r1) const {
  switch (n) {
    case 1: return rows_n<1>(x, y, r0, r1);
    case 2: return rows_n<2>(x, y, r0, r1);
    case 3: return rows_n<3>(x, y, r0, r1);
    case 4: return rows_n<4>(x, y, r0, r1);
    case 5: return rows_n<5>(x, y, r0, r1);
    case 6: return rows_n<6>(x, y, r0, r1);
    case 7: return rows_n<7>(x, y, r0, r1);
    case 8: return rows_n<8>(x, y, r0, r1);
  }
  CTX_CHECK(false, "fused kernel for n = ", n);
}

}  // namespace ctx::quant

namespace ctx::quant {
namespace {

class Blockwise4BitQuantizer final : public Quantizer {
 public:
  Blockwise4BitQuantizer(const Code4& code, int64_t blocksize, bool double_quant, bool q8_activations, bool bf16_codes)
      : code_(code), blocksize_(blocksize), double_quant_(double_quant), q8_activations_(q8_activations),
        bf16_codes_(bf16_codes) {}
  std::shared_ptr<const QuantizedMatrix> quantize(const WeightMatrix& w) const override {
    return std::make_shared<Blockwise4BitMatrix>(w, code_, blocksize_, double_quant_, q8_activations_, bf16_codes_);
  }

 private:
  const Code4& code_;
  int64_t blocksize_;
  bool double_quant_, q8_activations_, bf16_codes_;
};

}  // namespace

void register_blockwise_4bit(Catalog& catalog, const Code4& code, const std::string& help) {
  register_quantizer(catalog.quant,
      {code.name, 1, help,
       {ParamSpec::Int("blocksize", 64, 32, 4096, "weights per absmax block (a power of two; bitsandbytes' default 64)"),
        ParamSpec::Bool("double_quant", false,
                        "quantize the absmax to 8 bits in blocks of 256 after subtracting their mean (QLoRA double quantization)"),
        ParamSpec::Choice("codes", "float32", {"float32", "bfloat16"},
                          "the 16 code values as float32, or rounded to bfloat16 as bitsandbytes' 4-bit GEMV holds them "
                          "with a bfloat16 compute dtype (the GPU GEMV then takes one tensor-core slot per weight)"),
        activations_param()}},
      [&code](const Params& p) -> std::unique_ptr<Quantizer> {
        const int64_t bs = p.get_int("blocksize");
        if (bs & (bs - 1)) fail("quant plugin '", code.name, "': blocksize ", bs, " is not a power of two (allowed: 32, 64, ..., 4096)");
        return std::make_unique<Blockwise4BitQuantizer>(code, bs, p.get_bool("double_quant"), q8_activations(p),
                                                        p.get_string("codes") == "bfloat16");
      });
}

}  // namespace ctx::quant
