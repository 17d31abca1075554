// KV-cache quantization in the manner of KIVI (Liu et al. 2024): an option of its own, orthogonal to
// the attention backend, chosen with a `kv_quant` plugin spec such as `kivi:bits=4,group=32,residual=128`
// (plugins/kv_quant/; `none` = off).
//
// Per layer and KV head, the oldest entries are held quantized, the newest in float32:
//   keys     per channel: for each block of `group` consecutive tokens and each channel d, the
//            group's min and scale; codes of `bits` bits (KIVI: key outliers sit in fixed channels)
//   values   per token: for each token and each block of `group` consecutive channels (the last block
//            of a head may be shorter), min and scale; codes of `bits` bits
//   float    the last `residual` tokens plus the key group still filling: the quantized prefix is
//            always qlen(T) = group * floor(max(0, T - residual) / group) of the T entries, so the
//            float part holds T - qlen(T) in [residual, residual + group) once T >= residual.
// Quantization is asymmetric round-to-nearest with fp16 params, as KIVI and HF's quantized caches
// keep them: levels L = 2^bits - 1; the params are rounded to fp16 so that the codes still cover the
// block's [min, max] (kv_quant_fit below):
//   constant block (max == min): min_h = fp16 nearest(clamp(min, -65504, 65504)), scale_h = 0
//   else:  min_h   = fp16 rounded down(clamp(min, -65504, 65504))       (min_h <= min)
//          s       = (max - min_h) / L in float32, from the rounded min
//          scale_h = fp16 rounded up(clamp(s, 2^-14, 65504))              (scale_h >= s)
//   so min_h + L scale_h >= max (up to float32 rounding of s): no code of the block is clamped. A
//   positive scale never underflows (2^-14 is the smallest normal fp16; a block whose range is
//   below 2^-14 L gets that step, coarser than its own).
// The codes are computed against the rounded params, code = clamp(round((x - min_h) / scale_h), 0, L),
// so that dequantization is exactly x' = min_h + code * scale_h in float32. Error: |x - x'| <=
// scale_h / 2 plus float32 rounding, where scale_h <= max((max - min + u) / L, 2^-14) (1 + 2^-10)
// and u = min - min_h < one fp16 ulp of min (<= 2^-10 |min|, 2^-24 below 2^-14): the rounding of
// min widens the range by at most u, i.e. adds u / (2 L) to the error. (Rounding min and scale to
// nearest instead leaves min_h above min or min_h + L scale_h below max by up to 2^-11 |min| + 2^-11
// (max - min), an error of many steps at 8 bits where |min| >> max - min, e.g. 51 steps for a block
// [100.01, 100.06].) A constant block is reproduced as min_h (exactly when its value is an fp16
// number). Entries beyond +-65504 (outside fp16) are not represented: their block's min or scale
// saturates and their error is unbounded (bf16 K/V of the supported models stay far inside). Params
// take 4 bytes (two fp16) per block. Codes of one token row of head_dim channels are packed
// little-endian within bytes into ceil(head_dim * bits / 8) bytes.
// bits is 2, 4 or 8 (codes never straddle bytes).
//
// All functions are pure and thread-safe; KvQuantStore is not thread-safe (one cache, one caller).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/dtype.h"

namespace ctx {

struct KvQuantConfig {
  int bits = 0;           // 0 = off; else 2, 4 or 8
  int64_t group = 32;     // tokens per key block, channels per value block
  int64_t residual = 128; // recent tokens always kept in float
  std::string spec = "none";  // canonical plugin spec, for reports

  bool enabled() const { return bits != 0; }
  // Entries of T that are held quantized (see above); 0 when off.
  int64_t quantized_length(int64_t T) const;
  bool operator==(const KvQuantConfig& o) const {
    return bits == o.bits && (!enabled() || (group == o.group && residual == o.residual));
  }
};

// One block's (min, scale) as fp16 bit patterns (see above; the GPU's KiviKv stores the same bits
// as a __half2 (min, scale)).
struct KvQuantParam {
  uint16_t min_h = 0, scale_h = 0;
  float min() const { return f16_to_f32(min_h); }
  float scale() const { return f16_to_f32(scale_h); }
  bool operator==(const KvQuantParam& o) const { return min_h == o.min_h && scale_h == o.scale_h; }
};

// The fp16 rule above's bounds (shared with the GPU quantizer, kivi_kernels.cu).
inline constexpr float kKvQuantParamMax = 65504.f;            // the largest finite fp16
inline constexpr float kKvQuantScaleMin = 1.f / 16384.f;      // 2^-14, the smallest normal fp16
// The params of a block whose float32 extremes are lo <= hi.
KvQuantParam kv_quant_fit(float lo, float hi, int bits);

// Bytes of one packed row of `dim` codes.
int64_t kv_quant_row_bytes(int64_t dim, int bits);

// Keys: quantizes `tokens` rows of `dim` floats (row stride `stride`) per channel, as one block.
// Writes tokens packed rows to `codes` and dim params (channel order) to `params`.
void quantize_key_block(const float* rows, int64_t stride, int64_t tokens, int64_t dim, int bits, uint8_t* codes,
                        KvQuantParam* params);
void dequantize_key_block(const uint8_t* codes, const KvQuantParam* params, int64_t tokens, int64_t dim, int bits,
                          float* rows, int64_t stride);
// Values: quantizes one row of `dim` floats per block of `group` channels: ceil(dim / group) params.
void quantize_value_row(const float* row, int64_t dim, int64_t group, int bits, uint8_t* codes, KvQuantParam* params);
void dequantize_value_row(const uint8_t* codes, const KvQuantParam* params, int64_t dim, int64_t group, int bits,
                          float* row);

// The quantized prefix of one layer of one sequence, for every KV head. Entries are appended in
// whole key groups and never change afterwards, until clear() (KV compression rebuilds a compacted
// layer's store from its kept entries: KvCache::compact).
class KvQuantStore {
 public:
  KvQuantStore(const KvQuantConfig& config, int64_t kv_heads, int64_t head_dim);

  int64_t length() const { return length_; }  // entries per head
  // Quantizes and appends `count` entries (a multiple of group) per head: head h's rows start at
  // k + h * head_stride and v + h * head_stride, row stride head_dim.
  void append(const float* k, const float* v, int64_t head_stride, int64_t count);
  // Writes every entry of `head`, dequantized, to k_rows / v_rows (length() rows of head_dim).
  void dequantize(int64_t head, float* k_rows, float* v_rows) const;
  void clear();
  // Bytes allocated (codes and params, at vector capacity) and bytes of valid entries.
  int64_t bytes_reserved() const;
  int64_t bytes_used() const;

 private:
  struct Head {
    std::vector<uint8_t> k_codes, v_codes;       // [entry][row_bytes]
    std::vector<KvQuantParam> k_params;          // [key group][head_dim]
    std::vector<KvQuantParam> v_params;          // [entry][ceil(head_dim / group)]
  };
  KvQuantConfig config_;
  int64_t head_dim_, row_bytes_, value_blocks_;
  int64_t length_ = 0;
  std::vector<Head> heads_;
};

}  // namespace ctx
