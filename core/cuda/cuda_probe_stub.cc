// Used when ctxlab is built without CUDA.
#include "core/cuda/cuda_probe.h"

namespace ctx {

CudaReport probe_cuda() {
  CudaReport r;
  r.error = "ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON or AUTO with nvcc on PATH)";
  return r;
}

}  // namespace ctx
