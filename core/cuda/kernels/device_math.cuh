// Device helpers shared by the kernels (internal to core/cuda/kernels).
#pragma once

#include <cuda_bf16.h>

namespace ctx::cuda {

__device__ inline float round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

// HF's SiLU-and-multiply in bf16: the projections, the activation and the product each rounded.
__device__ inline __nv_bfloat16 swiglu(float gate, float up) {
  const float g = round_bf16(gate);
  const float act = round_bf16(g / (1.f + expf(-g)));
  return __float2bfloat16(act * round_bf16(up));
}

}  // namespace ctx::cuda
