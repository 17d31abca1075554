#include "core/cuda/tensor_map.h"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

#include <vector>

#include "core/base/error.h"

namespace ctx::cuda {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found);
    if (err != cudaSuccess || found != cudaDriverEntryPointSuccess || f == nullptr) {
      cudaGetLastError();
      fail("tensor map: the driver has no cuTensorMapEncodeTiled (", cudaGetErrorString(err), ")");
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

}  // namespace

CUtensorMap make_bf16_tensor_map(const void* base, std::initializer_list<uint64_t> dims,
                                 std::initializer_list<uint64_t> strides, std::initializer_list<uint32_t> box) {
  const std::vector<cuuint64_t> d(dims.begin(), dims.end()), s(strides.begin(), strides.end());
  const std::vector<cuuint32_t> b(box.begin(), box.end()), element_strides(dims.size(), 1);
  if (d.size() < 2 || d.size() > 5 || s.size() + 1 != d.size() || b.size() != d.size())
    fail("tensor map: rank ", d.size(), " with ", s.size(), " strides and ", b.size(), " box sizes");
  CUtensorMap map;
  const CUresult r = encode_tiled()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, cuuint32_t(d.size()), const_cast<void*>(base),
                                    d.data(), s.data(), b.data(), element_strides.data(), CU_TENSOR_MAP_INTERLEAVE_NONE,
                                    CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    fail("tensor map: cuTensorMapEncodeTiled failed (error ", int(r), ") for a bf16 tensor of rank ", d.size(),
         ", inner dimension ", d[0], ", box ", b[0], "x", b[1]);
  return map;
}

}  // namespace ctx::cuda
