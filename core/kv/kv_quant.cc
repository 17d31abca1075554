#include "core/kv/kv_quant.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"

namespace ctx {
namespace {

int levels(int bits) { return (1 << bits) - 1; }

// Codes against the rounded params (as floats: min_h, scale_h).
struct Fitted {
  float min, scale;
  explicit Fitted(KvQuantParam p) : min(p.min()), scale(p.scale()) {}
};

unsigned encode(float x, Fitted p, int bits) {
  if (p.scale == 0) return 0;
  const float q = std::floor((x - p.min) / p.scale + 0.5f);
  return unsigned(std::clamp(q, 0.0f, float(levels(bits))));
}

void put(uint8_t* codes, int64_t i, unsigned q, int bits) {
  codes[i * bits / 8] |= uint8_t(q << ((i * bits) % 8));
}

// Appends n default elements, growing the capacity geometrically but exactly to the need from empty,
// so that a cache quantized once (after a prefill) holds no slack.
template <class T>
T* extend(std::vector<T>& v, int64_t n) {
  const size_t need = v.size() + size_t(n);
  if (need > v.capacity()) v.reserve(std::max(need, 2 * v.capacity()));
  v.resize(need);
  return v.data() + need - size_t(n);
}

template <class T>
int64_t held(const std::vector<T>& v) { return int64_t(v.capacity() * sizeof(T)); }
template <class T>
int64_t used(const std::vector<T>& v) { return int64_t(v.size() * sizeof(T)); }

}  // namespace

int64_t KvQuantConfig::quantized_length(int64_t T) const {
  if (!enabled() || T <= residual) return 0;
  return (T - residual) / group * group;
}

KvQuantParam kv_quant_fit(float lo, float hi, int bits) {
  const float m = std::clamp(lo, -kKvQuantParamMax, kKvQuantParamMax);
  KvQuantParam p;
  if (hi == lo) {  // a constant block: its value to nearest, scale 0
    p.min_h = f32_to_f16(m);
    return p;
  }
  p.min_h = f32_to_f16_down(m);
  const float s = (hi - f16_to_f32(p.min_h)) / float(levels(bits));  // from the rounded min
  p.scale_h = f32_to_f16_up(std::clamp(s, kKvQuantScaleMin, kKvQuantParamMax));
  return p;
}

int64_t kv_quant_row_bytes(int64_t dim, int bits) { return (dim * bits + 7) / 8; }

void quantize_key_block(const float* rows, int64_t stride, int64_t tokens, int64_t dim, int bits, uint8_t* codes,
                        KvQuantParam* params) {
  const int64_t rb = kv_quant_row_bytes(dim, bits);
  std::fill(codes, codes + tokens * rb, uint8_t(0));
  for (int64_t d = 0; d < dim; ++d) {
    float lo = rows[d], hi = rows[d];
    for (int64_t t = 1; t < tokens; ++t) lo = std::min(lo, rows[t * stride + d]), hi = std::max(hi, rows[t * stride + d]);
    params[d] = kv_quant_fit(lo, hi, bits);
    const Fitted p(params[d]);
    for (int64_t t = 0; t < tokens; ++t) put(codes + t * rb, d, encode(rows[t * stride + d], p, bits), bits);
  }
}

namespace {
// The codes of one row as floats; bits a compile-time constant so that the unpacking vectorises
// (dequantization runs over the whole quantized prefix before every attention).
template <int kBits>
void unpack_row(const uint8_t* codes, int64_t dim, float* out) {
  constexpr int kPerByte = 8 / kBits;
  constexpr unsigned kMask = (1u << kBits) - 1;
  for (int64_t i = 0; i < dim; ++i) out[i] = float((unsigned(codes[i / kPerByte]) >> ((i % kPerByte) * kBits)) & kMask);
}

void unpack_row(const uint8_t* codes, int64_t dim, int bits, float* out) {
  if (bits == 8) return unpack_row<8>(codes, dim, out);
  if (bits == 4) return unpack_row<4>(codes, dim, out);
  CTX_CHECK(bits == 2);
  unpack_row<2>(codes, dim, out);
}
}  // namespace

void dequantize_key_block(const uint8_t* codes, const KvQuantParam* params, int64_t tokens, int64_t dim, int bits,
                          float* rows, int64_t stride) {
  const int64_t rb = kv_quant_row_bytes(dim, bits);
  for (int64_t t = 0; t < tokens; ++t) unpack_row(codes + t * rb, dim, bits, rows + t * stride);
  for (int64_t d = 0; d < dim; ++d) {  // a channel's params as floats once, for the block's tokens
    const Fitted p(params[d]);
    for (int64_t t = 0; t < tokens; ++t) rows[t * stride + d] = p.min + rows[t * stride + d] * p.scale;
  }
}

void quantize_value_row(const float* row, int64_t dim, int64_t group, int bits, uint8_t* codes, KvQuantParam* params) {
  std::fill(codes, codes + kv_quant_row_bytes(dim, bits), uint8_t(0));
  for (int64_t b = 0, c0 = 0; c0 < dim; ++b, c0 += group) {
    const int64_t c1 = std::min(dim, c0 + group);
    const auto [lo, hi] = std::minmax_element(row + c0, row + c1);
    params[b] = kv_quant_fit(*lo, *hi, bits);
    const Fitted p(params[b]);
    for (int64_t c = c0; c < c1; ++c) put(codes, c, encode(row[c], p, bits), bits);
  }
}

void dequantize_value_row(const uint8_t* codes, const KvQuantParam* params, int64_t dim, int64_t group, int bits,
                          float* row) {
  unpack_row(codes, dim, bits, row);
  for (int64_t b = 0, c0 = 0; c0 < dim; ++b, c0 += group) {
    const Fitted p(params[b]);
    for (int64_t c = c0; c < std::min(dim, c0 + group); ++c) row[c] = p.min + row[c] * p.scale;
  }
}

KvQuantStore::KvQuantStore(const KvQuantConfig& config, int64_t kv_heads, int64_t head_dim)
    : config_(config), head_dim_(head_dim), row_bytes_(kv_quant_row_bytes(head_dim, config.bits)),
      value_blocks_((head_dim + config.group - 1) / config.group), heads_(size_t(kv_heads)) {
  CTX_CHECK(config.bits == 2 || config.bits == 4 || config.bits == 8, "KV quantization needs 2, 4 or 8 bits");
  CTX_CHECK(config.group >= 1 && config.residual >= 0);
}

void KvQuantStore::append(const float* k, const float* v, int64_t head_stride, int64_t count) {
  const int64_t g = config_.group, bits = config_.bits;
  CTX_CHECK(count >= 0 && count % g == 0, "quantized entries come in whole groups");
  for (size_t h = 0; h < heads_.size(); ++h) {
    Head& hd = heads_[h];
    const float* kh = k + int64_t(h) * head_stride;
    const float* vh = v + int64_t(h) * head_stride;
    uint8_t* kc = extend(hd.k_codes, count * row_bytes_);
    uint8_t* vc = extend(hd.v_codes, count * row_bytes_);
    KvQuantParam* kp = extend(hd.k_params, count / g * head_dim_);
    KvQuantParam* vp = extend(hd.v_params, count * value_blocks_);
    for (int64_t b = 0; b < count / g; ++b)
      quantize_key_block(kh + b * g * head_dim_, head_dim_, g, head_dim_, int(bits), kc + b * g * row_bytes_,
                         kp + b * head_dim_);
    for (int64_t t = 0; t < count; ++t)
      quantize_value_row(vh + t * head_dim_, head_dim_, g, int(bits), vc + t * row_bytes_, vp + t * value_blocks_);
  }
  length_ += count;
}

void KvQuantStore::dequantize(int64_t head, float* k_rows, float* v_rows) const {
  const Head& hd = heads_[size_t(head)];
  const int64_t g = config_.group;
  for (int64_t b = 0; b < length_ / g; ++b)
    dequantize_key_block(hd.k_codes.data() + b * g * row_bytes_, hd.k_params.data() + b * head_dim_, g, head_dim_,
                         config_.bits, k_rows + b * g * head_dim_, head_dim_);
  for (int64_t t = 0; t < length_; ++t)
    dequantize_value_row(hd.v_codes.data() + t * row_bytes_, hd.v_params.data() + t * value_blocks_, head_dim_, g,
                         config_.bits, v_rows + t * head_dim_);
}

void KvQuantStore::clear() {
  for (Head& h : heads_) h = Head{};
  length_ = 0;
}

int64_t KvQuantStore::bytes_reserved() const {
  int64_t b = 0;
  for (const Head& h : heads_) b += held(h.k_codes) + held(h.v_codes) + held(h.k_params) + held(h.v_params);
  return b;
}

int64_t KvQuantStore::bytes_used() const {
  int64_t b = 0;
  for (const Head& h : heads_) b += used(h.k_codes) + used(h.v_codes) + used(h.k_params) + used(h.v_params);
  return b;
}

}  // namespace ctx
