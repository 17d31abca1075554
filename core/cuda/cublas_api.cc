#include "core/cuda/cublas_api.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>

#include "core/base/error.h"

namespace ctx::cuda {

namespace {

CublasApi load() {
  const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) throw Unsupported(str_cat("GPU engine: cannot load ", name, ": ", dlerror()));
  auto sym = [&](auto& fn, const char* symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
    if (!fn) throw Unsupported(str_cat("GPU engine: ", name, " has no ", symbol));
  };
  CublasApi api{};
  sym(api.create, "cublasCreate_v2");
  sym(api.destroy, "cublasDestroy_v2");
  sym(api.set_stream, "cublasSetStream_v2");
  sym(api.gemm_ex, "cublasGemmEx");
  sym(api.gemm_strided_batched_ex, "cublasGemmStridedBatchedEx");
  sym(api.status_string, "cublasGetStatusString");
  return api;  // the library stays loaded for the process's life
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load();
  return api;
}

}  // namespace ctx::cuda
