// LLM.int8()'s decomposition of a linear layer's input (the `llm_int8` plugin's matmul(),
// core/quant/packed_layout.h kLlmInt8) as the GPU kernels stage it, internal to core/cuda/kernels.
// The weights are the int8 matrix with its row scales (quant_formats.cuh Int8Format); only the input
// changes, so the int8 GEMV and prefill's dequantized tiles run unchanged on the staged input:
//   outlier column c   any row of the call has |x[j, c]| > threshold (threshold > 0; none when 0)
//   amax_j             max |x[j, c]| over the row's entries with |x| <= threshold (all when 0), also
//                      in outlier columns, as the CPU computes it; sx_j = amax_j / 127
//   code               round_half_even(x[j, c] * (127 / amax_j)), 0 when amax_j is 0 (CPU: nearbyint)
// Two stagings of row j (bf16), both sum_c staged_c * q[r, c] * absmax[r] / 127 = the CPU's y[j, r]:
// * as codes (the decode GEMV, one input row): non-outlier entries as their code (an integer
//   -127..127, exact in bf16), outlier entries as x / sx_j; the GEMV multiplies each row's dot product
//   by factor() = sx_j. The int8 part is then the CPU's exact integer dot product (the tensor cores'
//   products are exact, their float32 sums of 32 codes too); only the outliers are rounded: bf16(x /
//   sx_j) is within 2^-8 of x / sx_j. When amax_j is 0 or x / sx_j could overflow bf16 (largest
//   outlier / sx_j > 1e38), the values below are staged instead, with factor() = 1.
// * as values (prefill, n rows, cuBLAS on bf16): non-outlier entries as bf16(code * sx_j) (within
//   2^-8 of the CPU's value code * sx_j), outlier entries as x (already bf16); factor() = 1.
// Everything compiles for the host too (CTX_HD), so tests/gpu/gpu_quant_layout_test.cu stages inputs
// with the kernels' own arithmetic.
#pragma once

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "core/cuda/kernels/quant_formats.cuh"
#if defined(__CUDACC__)
#include "core/cuda/kernels/device_math.cuh"
#endif

namespace ctx::cuda::quant_device {

// Beyond this the staged outlier x / sx might round to infinity in bf16 (largest finite ~3.39e38).
inline constexpr float kMaxStagedOutlier = 1e38f;

CTX_HD inline bool is_outlier(float x, float threshold) { return threshold > 0.f && fabsf(x) > threshold; }

// A row's quantization of its non-outlier entries.
struct Int8RowScale {
  float inv = 0.f;     // 127 / amax (0 when amax is 0): code = rint(x * inv)
  float sx = 0.f;      // amax / 127: a code's value
  bool codes = false;  // staged as codes (outliers as x / sx), the dot product then times sx
  CTX_HD float factor() const { return codes ? sx : 1.f; }
};

// amax: max |x| over the row's entries with |x| <= threshold; outlier_max: max |x| over its entries
// in outlier columns (0 when none); as_codes: the decode staging when possible.
CTX_HD inline Int8RowScale int8_row_scale(float amax, float outlier_max, bool as_codes) {
  Int8RowScale s;
  s.sx = amax / 127.0f;
  s.inv = amax > 0.f ? 127.0f / amax : 0.f;
  s.codes = as_codes && amax > 0.f && outlier_max / s.sx <= kMaxStagedOutlier;
  return s;
}

// The staged value (before rounding to bf16) of entry x of a row, in an outlier column or not.
CTX_HD inline float staged_activation(float x, bool outlier_column, const Int8RowScale& s) {
  if (outlier_column) return s.codes ? x / s.sx : x;
  const float code = rintf(x * s.inv);
  return s.codes ? code : code * s.sx;
}

#if defined(__CUDACC__)
// The decode GEMV's input xs[0, cols) (bf16 in shared memory, one row: its outlier columns are its own
// entries above the threshold), restaged in place as codes; whole block, ends with __syncthreads().
// Returns the factor the row's dot products are multiplied by.
__device__ inline float stage_int8_activations(__nv_bfloat16* xs, int64_t cols, float threshold) {
  float amax = 0.f, outlier_max = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float a = fabsf(__bfloat162float(xs[c]));
    if (is_outlier(a, threshold)) {
      outlier_max = fmaxf(outlier_max, a);
    } else {
      amax = fmaxf(amax, a);
    }
  }
  amax = block_max(amax);
  outlier_max = block_max(outlier_max);
  const Int8RowScale s = int8_row_scale(amax, outlier_max, true);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float x = __bfloat162float(xs[c]);
    xs[c] = __float2bfloat16(staged_activation(x, is_outlier(x, threshold), s));
  }
  __syncthreads();
  return s.factor();
}
#endif

}  // namespace ctx::cuda::quant_device
