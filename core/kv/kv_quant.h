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
// Quantization is asymmetric round-to-nearest: levels L = 2^bits - 1, scale = (max - min) / L,
// code = clamp(round((x - min) / scale), 0, L), x' = min + code * scale, so |x - x'| <= scale / 2
// up to float32 rounding; a constant block (scale 0) is reproduced exactly. Params are float32 (two
// per block; KIVI's fp16 params would take half that: not done). Codes of one token row of
// head_dim channels are packed little-endian within bytes into ceil(head_dim * bits / 8) bytes.
// bits is 2, 4 or 8 (codes never straddle bytes).
//
// All functions are pure and thread-safe; KvQuantStore is not thread-safe (one cache, one caller).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

struct KvQuantParam {
  float min = 0, scale = 0;
};

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
