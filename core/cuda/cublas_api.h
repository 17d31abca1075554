// cuBLAS, loaded when the GPU engine first needs it (internal to core/cuda). Linking it would map
// and relocate libcublasLt (about 200 MB resident) into every ctxlab process, CPU-only runs
// included, where it would count in the runner's peak host memory. cublas() dlopens
// libcublas.so.<major of the headers> once (thread-safe) and throws ctx::Unsupported, naming the
// library and dlerror(), when it cannot be loaded.
#pragma once

#include <cublas_v2.h>

namespace ctx::cuda {

struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t*);
  cublasStatus_t (*destroy)(cublasHandle_t);
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                            const void*, const void*, cudaDataType, int, long long, const void*,
                                            cudaDataType, int, long long, const void*, void*, cudaDataType, int,
                                            long long, int, cublasComputeType_t, cublasGemmAlgo_t);
  const char* (*status_string)(cublasStatus_t);
};

const CublasApi& cublas();

}  // namespace ctx::cuda
