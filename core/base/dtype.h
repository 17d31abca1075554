// Element types of tensors as stored in checkpoints, and scalar conversions between them.
// Conversions are exact where the target can represent the value; float -> bf16/f16 round to
// nearest even (as PyTorch does). All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace ctx {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

// Bytes per element.
size_t dtype_size(DType t);
// Safetensors spelling: "F32", "BF16", ...
std::string_view dtype_name(DType t);
// Parses the safetensors spelling; nullopt when unknown.
std::optional<DType> parse_dtype(std::string_view name);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return uint16_t((bits >> 16) | 0x40);  // NaN stays NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// float -> f16 rounded toward -infinity / +infinity (the nearest f16 <= f / >= f; beyond the f16
// range: down gives -inf or 65504, up gives -65504 or +inf).
uint16_t f32_to_f16_down(float f);
uint16_t f32_to_f16_up(float f);

// Converts n elements of type `src_type` at `src` into floats. Supports F32, F16, BF16, F64.
void convert_to_f32(DType src_type, const void* src, float* dst, size_t n);
// dst[i] = f32_to_bf16(src[i]), on every thread (uploads of float32 weights to bf16 devices).
void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n);

}  // namespace ctx
