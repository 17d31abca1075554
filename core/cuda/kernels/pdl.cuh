// Programmatic dependent launch (Hopper, sm_90+), internal to core/cuda/kernels.
//
// Every kernel of the forward pass is launched with launch_pdl(): the next kernel on the stream may
// start while this one drains. The contract each such kernel keeps:
//   - before pdl_wait() it touches only memory no earlier kernel writes (the weights), so it can pull
//     its first weight tiles from HBM during the previous kernel's tail;
//   - pdl_wait() returns once every earlier kernel on the stream has finished and its writes are
//     visible, so everything after it (activations, the KV cache, outputs) is ordered as usual;
//   - pdl_trigger() lets the next kernel launch; it is called once this block no longer needs the
//     SM slots the next kernel would take (at its start: a dependent only launches when every block
//     of this grid has started, and its blocks then fill the slots this grid frees).
// Ordering is transitive: a kernel's wait covers the kernel before it, whose wait covered the one
// before that. On older GPUs the attribute is ignored and the PTX is compiled out.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "core/cuda/cuda_check.h"

namespace ctx::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialization allowed;
// checks the launch.
template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  CTX_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace ctx::cuda
