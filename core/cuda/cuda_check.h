// Checks of CUDA runtime and cuBLAS return codes (internal to core/cuda). A failure throws ctx::Error
// naming the call, the file:line and the runtime's message; there is no recovery from a failed launch.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/base/error.h"
#include "core/cuda/cublas_api.h"

#define CTX_CUDA_CHECK(expr)                                                                              \
  do {                                                                                                    \
    const cudaError_t ctx_cuda_err_ = (expr);                                                             \
    if (ctx_cuda_err_ != cudaSuccess)                                                                     \
      ::ctx::fail("CUDA error ", cudaGetErrorString(ctx_cuda_err_), " in ", #expr, " at ", __FILE__, ":", \
                  __LINE__);                                                                              \
  } while (0)

// After a kernel launch: launch-configuration errors surface here, execution errors at the next sync.
#define CTX_CUDA_CHECK_LAUNCH() CTX_CUDA_CHECK(cudaGetLastError())

// Throws ctx::Unsupported ("<who>: no CUDA device is available") unless a GPU is present.
inline void require_cuda_device(const char* who) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw ::ctx::Unsupported(::ctx::str_cat(who, ": no CUDA device is available"));
  }
}

#define CTX_CUBLAS_CHECK(expr)                                                                         \
  do {                                                                                                 \
    const cublasStatus_t ctx_cublas_st_ = (expr);                                                      \
    if (ctx_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                                       \
      ::ctx::fail("cuBLAS error ", ::ctx::cuda::cublas().status_string(ctx_cublas_st_), " in ", #expr, " at ", __FILE__, \
                  ":", __LINE__);                                                                      \
  } while (0)
