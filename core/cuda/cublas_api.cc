#include "core/cuda/cublas_api.h"

#include <string>

#include "core/base/dynamic_library.h"

namespace ctx::cuda {

namespace {

CublasApi load() {
  const DynamicLibrary lib =
      DynamicLibrary::open({"libcublas.so." + std::to_string(CUBLAS_VER_MAJOR)}, "GPU engine");
  CublasApi api{};
  lib.bind(api.create, "cublasCreate_v2");
  lib.bind(api.destroy, "cublasDestroy_v2");
  lib.bind(api.set_stream, "cublasSetStream_v2");
  lib.bind(api.gemm_ex, "cublasGemmEx");
  lib.bind(api.gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
  lib.bind(api.status_string, "cublasGetStatusString");
  return api;  // the library stays loaded for the process's life
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load();
  return api;
}

}  // namespace ctx::cuda
