// Per-format decoding of a group of 32 weights (internal to core/cuda/kernels; layouts in
// quant_kernels.h). Each format is a policy with
//   kVecs                                       16-byte loads per group (2 for 8-bit codes, 1 for 4-bit)
//   scale(view, row, g) -> float                the group's multiplier (reads only weight arrays)
//   dequant(codes, k, table, v[8])              unscaled values of elements 8k .. 8k + 7 (k = 0..3,
//                                               a compile-time constant after unrolling)
// so that value(r, 32g + 8k + i) = v[i] * scale, exactly the CPU plugin's dequantized float.
// Integers become floats through the 2^23 trick: the float with bits 0x4B000000 | b is 2^23 + b for
// b < 2^23, so one byte permute and one subtraction give an exact float per code.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/cuda/kernels/quant_kernels.h"

namespace ctx::cuda::quant_device {

// Where row r's blocks start (kCode4 numbers blocks along each stacked part's flattened rows; the
// other formats ignore everything but r).
struct RowRef {
  int64_t r = 0;
  int64_t elem = 0;  // flattened index of (r, 0) within its part
  int64_t block0 = 0, nested0 = 0;
  float offset = 0.f;
};

__device__ inline RowRef row_ref(const QuantMatrixView& w, int64_t r) {
  int p = 0;
#pragma unroll
  for (int i = 1; i < kMaxQuantParts; ++i)
    if (i < w.num_parts && r >= w.parts[i].row0) p = i;
  const QuantPart& part = w.parts[p];
  return RowRef{r, (r - part.row0) * w.cols, part.block0, part.nested0, part.offset};
}

__device__ inline uint32_t word(const uint4& u, int i) {
  return i == 0 ? u.x : i == 1 ? u.y : i == 2 ? u.z : u.w;
}

// Byte m of `bytes` (values 0..255) as the float 2^23 + byte.
__device__ inline float magic_byte(uint32_t bytes, int m) {
  return __uint_as_float(__byte_perm(bytes, 0x4B000000u, 0x7540u | uint32_t(m)));
}

// int8 codes in element order; value = code * scale.
struct Int8Codes {
  static constexpr int kVecs = 2;
  __device__ static void dequant(const uint4 (&c)[kVecs], int k, const float*, float (&v)[8]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t u = word(c[k >> 1], 2 * (k & 1) + h) ^ 0x80808080u;  // code + 128, as unsigned bytes
#pragma unroll
      for (int m = 0; m < 4; ++m) v[4 * h + m] = magic_byte(u, m) - 8388736.f;  // 2^23 + 128
    }
  }
};

struct Int8Format : Int8Codes {
  __device__ static float scale(const QuantMatrixView& w, const RowRef& row, int64_t) {
    return __fdiv_rn(static_cast<const float*>(w.scales)[row.r], 127.f);  // the CPU's absmax / 127.0f
  }
};

struct Q8_0Format : Int8Codes {
  __device__ static float scale(const QuantMatrixView& w, const RowRef& row, int64_t g) {
    return __half2float(static_cast<const __half*>(w.scales)[row.r * w.groups + g]);
  }
};

// ggml q4_0: element j in the low nibble of byte j, element j + 16 in the high one; value = (q - 8) * d.
struct Q4_0Format {
  static constexpr int kVecs = 1;
  __device__ static float scale(const QuantMatrixView& w, const RowRef& row, int64_t g) {
    return __half2float(static_cast<const __half*>(w.scales)[row.r * w.groups + g]);
  }
  __device__ static void dequant(const uint4 (&c)[kVecs], int k, const float*, float (&v)[8]) {
    // Elements 8k .. 8k + 7: bytes 8 (k & 1) .. + 7, low nibbles for k < 2, high ones after.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t u = (word(c[0], 2 * (k & 1) + h) >> (k < 2 ? 0 : 4)) & 0x0F0F0F0Fu;
#pragma unroll
      for (int m = 0; m < 4; ++m) v[4 * h + m] = magic_byte(u, m) - 8388616.f;  // 2^23 + 8
    }
  }
};

// bitsandbytes nf4/fp4: element 2k in the high nibble of byte k; value = table[code] * absmax[block].
struct Code4Format {
  static constexpr int kVecs = 1;
  __device__ static float scale(const QuantMatrixView& w, const RowRef& row, int64_t g) {
    // cols % 32 == 0 and blocksize is a power of two >= 32: the group lies in one block.
    const int64_t b = (row.elem + 32 * g) >> w.block_shift;
    if (!w.double_quant) return static_cast<const float*>(w.scales)[row.block0 + b];
    const uint8_t q = static_cast<const uint8_t*>(w.scales)[row.block0 + b];
    return w.dynamic_map[q] * w.absmax2[row.nested0 + (b >> 8)] + row.offset;
  }
  // table: the 16 code values in shared memory (a lane's 16 possible addresses sit in 16 banks).
  __device__ static void dequant(const uint4 (&c)[kVecs], int k, const float* table, float (&v)[8]) {
    const uint32_t u = word(c[0], k);  // bytes 4k .. 4k + 3 = elements 8k .. 8k + 7
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      v[2 * m] = table[(u >> (8 * m + 4)) & 0xF];
      v[2 * m + 1] = table[(u >> (8 * m)) & 0xF];
    }
  }
};

// Calls f.template operator()<Format>() with the policy of w.format.
template <class F>
void dispatch_format(QuantFormat format, F&& f) {
  switch (format) {
    case QuantFormat::kInt8: return f.template operator()<Int8Format>();
    case QuantFormat::kQ8_0: return f.template operator()<Q8_0Format>();
    case QuantFormat::kQ4_0: return f.template operator()<Q4_0Format>();
    case QuantFormat::kCode4: return f.template operator()<Code4Format>();
  }
}

}  // namespace ctx::cuda::quant_device
