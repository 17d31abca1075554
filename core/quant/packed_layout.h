// What a QuantizedMatrix's packed buffers mean, for code that reads them without the plugin's
// classes (core may not include plugins/): the GPU engine uploads these bytes as they are
// (core/cuda/gpu_quant_weights.h) and decodes them with the same tables. A format that returns
// kind kNone has no such description (its values come only from its own code) and is not uploaded.
//
// Kinds and the buffers() they name (the formats' headers in plugins/quant/common state the math):
//   kRowwiseInt8     "int8" [rows, cols] int8, "absmax" [rows] float32; value = q * absmax[r] / 127
//   kLlmInt8         the buffers of kRowwiseInt8; matmul() decomposes its input per call (LLM.int8(),
//                    plugins/quant/llm_int8): the outlier columns are the input features where any row
//                    of x has |x| > outlier_threshold (none when the threshold is 0) and are multiplied
//                    in floating point; every other entry is quantized to int8 per row of x with the
//                    absmax of that row's entries |x| <= outlier_threshold (all entries when 0):
//                    y[j, r] = absmax[r] / 127 * (sx_j * sum_{c not outlier} round(x[j, c] / sx_j) q[r, c]
//                                                 + sum_{c outlier} x[j, c] q[r, c]),  sx_j = amax_j / 127
//   kGgmlQ8_0        "blocks" of {fp16 d, int8 qs[32]} row by row; value = qs[i] * d
//   kGgmlQ4_0        "blocks" of {fp16 d, uint8 qs[16]}: element j in the low nibble of qs[j],
//                    element j + 16 in the high one; value = (nibble - 8) * d
//   kBlockwise4Bit   "codes": the matrix flattened row-major, element 2k in the high nibble of byte k;
//                    blocks of `blocksize` consecutive elements (crossing rows when cols % blocksize
//                    != 0) with "absmax" [blocks] float32, or with double_quant "absmax_q" [blocks]
//                    uint8, "absmax2" [ceil(blocks / 256)] float32 and "absmax_offset" (one float32):
//                    absmax[b] = dynamic_map[absmax_q[b]] * absmax2[b / 256] + offset;
//                    value = code_values[nibble] * absmax[block]
// Plain data; the pointers refer to format-wide constants that outlive every matrix.
#pragma once

#include <cstdint>

namespace ctx {

enum class PackedKind { kNone, kRowwiseInt8, kLlmInt8, kGgmlQ8_0, kGgmlQ4_0, kBlockwise4Bit };

struct PackedLayout {
  PackedKind kind = PackedKind::kNone;
  int64_t blocksize = 0;               // kBlockwise4Bit: elements per absmax block (a power of two >= 32)
  bool double_quant = false;           // kBlockwise4Bit
  const float* code_values = nullptr;  // kBlockwise4Bit: the 16 code values
  const float* dynamic_map = nullptr;  // kBlockwise4Bit with double_quant: the 256 values of absmax_q
  float outlier_threshold = 0.f;       // kLlmInt8: > 0 decomposes the input, 0 quantizes all of it
};

}  // namespace ctx
