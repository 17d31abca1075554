// Per-format decoding of a group of 32 weights (internal to core/cuda/kernels; layouts in
// quant_kernels.h). Each format is a policy with
//   kVecs                                       16-byte loads per group (2 for 8-bit codes, 1 for 4-bit)
//   scale(view, row, g) -> float                the group's multiplier (reads only weight arrays)
//   dequant(codes, k, table, v[8])              unscaled values of elements 8k .. 8k + 7 (k = 0..3,
//                                               a compile-time constant after unrolling)
// so that value(r, 32g + 8k + i) = v[i] * scale, exactly the CPU plugin's dequantized float.
// Integers become floats through the 2^23 trick: the float with bits 0x4B000000 | b is 2^23 + b for
// b < 2^23, so one byte permute and one subtraction give an exact float per code.
// Everything here also compiles for the host (CTX_HD), so that tests/gpu/gpu_quant_layout_test.cu can
// check the packed layout and these decoders against the CPU plugins without a GPU.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#define CTX_HD __host__ __device__

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

// Constant indices only: the view is a kernel parameter, read in place.
CTX_HD inline RowRef row_ref(const QuantMatrixView& w, int64_t r) {
  RowRef ref{r, r * w.cols, 0, 0, 0.f};
#pragma unroll
  for (int i = 0; i < kMaxQuantParts; ++i) {
    const QuantPart& part = w.parts[i];
    if (i < w.num_parts && r >= part.row0) ref = RowRef{r, (r - part.row0) * w.cols, part.block0, part.nested0, part.offset};
  }
  return ref;
}

CTX_HD inline uint32_t word(const uint4& u, int i) {
  return i == 0 ? u.x : i == 1 ? u.y : i == 2 ? u.z : u.w;
}

// Byte m of `bytes` (values 0..255) as the float 2^23 + byte.
CTX_HD inline float magic_byte(uint32_t bytes, int m) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(__byte_perm(bytes, 0x4B000000u, 0x7540u | uint32_t(m)));
#else
  const uint32_t u = 0x4B000000u | ((bytes >> (8 * m)) & 0xFFu);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// Shared-memory slot of input column c in the GEMV's staged input (quant_gemv_kernels.cu): group g's
// 16-byte piece k sits in slot (k + g / 2) % 4 of the group.
struct XSlot {
  CTX_HD int64_t operator()(int64_t c) const { return (c & ~int64_t(31)) | ((((c >> 3) + (c >> 6)) & 3) << 3) | (c & 7); }
};
// The 16-byte piece k of group g of the staged input.
CTX_HD inline uint4 x_piece(const uint4* xs, int64_t g, int k) { return xs[g * 4 + ((k + (g >> 1)) & 3)]; }

// int8 codes in element order; value = code * scale.
struct Int8Codes {
  static constexpr int kVecs = 2;
  CTX_HD static void dequant(const uint4 (&c)[kVecs], int k, const float*, float (&v)[8]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t u = word(c[k >> 1], 2 * (k & 1) + h) ^ 0x80808080u;  // code + 128, as unsigned bytes
#pragma unroll
      for (int m = 0; m < 4; ++m) v[4 * h + m] = magic_byte(u, m) - 8388736.f;  // 2^23 + 128
    }
  }
};

struct Int8Format : Int8Codes {
  CTX_HD static float scale(const QuantMatrixView& w, const RowRef& row, int64_t) {
#if defined(__CUDA_ARCH__)
    return __fdiv_rn(static_cast<const float*>(w.scales)[row.r], 127.f);  // the CPU's absmax / 127.0f
#else
    return static_cast<const float*>(w.scales)[row.r] / 127.f;
#endif
  }
};

struct Q8_0Format : Int8Codes {
  CTX_HD static float scale(const QuantMatrixView& w, const RowRef& row, int64_t g) {
    return __half2float(static_cast<const __half*>(w.scales)[row.r * w.groups + g]);
  }
};

// ggml q4_0: element j in the low nibble of byte j, element j + 16 in the high one; value = (q - 8) * d.
struct Q4_0Format {
  static constexpr int kVecs = 1;
  CTX_HD static float scale(const QuantMatrixView& w, const RowRef& row, int64_t g) {
    return __half2float(static_cast<const __half*>(w.scales)[row.r * w.groups + g]);
  }
  CTX_HD static void dequant(const uint4 (&c)[kVecs], int k, const float*, float (&v)[8]) {
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
  CTX_HD static float scale(const QuantMatrixView& w, const RowRef& row, int64_t g) {
    // cols % 32 == 0 and blocksize is a power of two >= 32: the group lies in one block.
    const int64_t b = (row.elem + 32 * g) >> w.block_shift;
    if (!w.double_quant) return static_cast<const float*>(w.scales)[row.block0 + b];
    const uint8_t q = static_cast<const uint8_t*>(w.scales)[row.block0 + b];
    return fmaf(w.dynamic_map[q], w.absmax2[row.nested0 + (b >> 8)], row.offset);  // one rounding, as the CPU
  }
  // table: the 16 code values in shared memory (a lane's 16 possible addresses sit in 16 banks).
  CTX_HD static void dequant(const uint4 (&c)[kVecs], int k, const float* table, float (&v)[8]) {
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
