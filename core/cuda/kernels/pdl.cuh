// Programmatic dependent launch (Hopper, sm_90+), internal to core/cuda/kernels.
//
// Every kernel of the forward pass is launched with launch_pdl(): the next kernel on the stream may
// start while this one drains. The contract each such kernel keeps:
//   - before pdl_wait() it touches only memory no earlier kernel writes (the weights), so it can pull
//     its first weight tiles from HBM during the previous kernel's tail; or memory that only kernels
//     two or more launches back write (the launch before passed its own wait before this one could
//     start), such as the KV rows of earlier positions that decode attention prefetches;
//   - pdl_wait() returns once every earlier kernel on the stream has finished and its writes are
//     visible, so everything after it (activations, the KV cache, outputs) is ordered as usual;
//   - pdl_trigger() lets the next kernel launch; it is called once this block no longer needs the
//     SM slots the next kernel would take (at its start: a dependent only launches when every block
//     of this grid has started, and its blocks then fill the slots this grid frees).
// Ordering is transitive: a kernel's wait covers the kernel before it, whose wait covered the one
// before that. On older GPUs the attribute is ignored and the PTX is compiled out.
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <mutex>
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

// Lets `kernel` launch with `smem` bytes of dynamic shared memory on the current device. The limit is
// one attribute per kernel (and device): it is raised to the largest smem asked so far and never
// lowered (a launch with less stays valid), and set for any smem > 0, since the kernel's static
// shared memory counts against the default 48 KiB too.
inline void allow_dynamic_smem(const void* kernel, size_t smem) {
  if (smem == 0) return;
  static std::mutex mu;
  static std::map<std::pair<int, const void*>, size_t> limit;
  int device = 0;
  CTX_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mu);
  size_t& set = limit[{device, kernel}];
  if (smem <= set) return;
  CTX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  set = smem;
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialization allowed
// (and the kernel's dynamic shared memory limit raised to smem: allow_dynamic_smem); checks the launch.
template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  allow_dynamic_smem(reinterpret_cast<const void*>(kernel), smem);
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
