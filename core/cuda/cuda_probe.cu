#include <cuda_runtime.h>

#include <vector>

#include "core/cuda/cuda_probe.h"

namespace ctx {
namespace {

__global__ void saxpy_kernel(int n, float a, const float* x, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

std::string cuda_error(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

// y = 2x + y on the device, checked on the host.
bool run_test_kernel(std::string* error) {
  const int n = 1 << 20;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = float(i % 1000), y[i] = 1.0f;
  float *dx = nullptr, *dy = nullptr;
  cudaError_t e = cudaMalloc(&dx, n * sizeof(float));
  if (e == cudaSuccess) e = cudaMalloc(&dy, n * sizeof(float));
  if (e == cudaSuccess) e = cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(dy, y.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  if (e == cudaSuccess) {
    saxpy_kernel<<<(n + 255) / 256, 256>>>(n, 2.0f, dx, dy);
    e = cudaGetLastError();
  }
  if (e == cudaSuccess) e = cudaMemcpy(y.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(dx);
  cudaFree(dy);
  if (e != cudaSuccess) {
    *error = cuda_error(e);
    return false;
  }
  for (int i = 0; i < n; ++i)
    if (y[i] != 2.0f * float(i % 1000) + 1.0f) {
      *error = "test kernel computed a wrong value at index " + std::to_string(i);
      return false;
    }
  return true;
}

}  // namespace

CudaReport probe_cuda() {
  CudaReport r;
  r.built_with_cuda = true;
  cudaRuntimeGetVersion(&r.runtime_version);
  if (cudaDriverGetVersion(&r.driver_version) != cudaSuccess || r.driver_version == 0) {
    r.error = "no CUDA driver loaded (no GPU on this machine?)";
    return r;
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    r.error = cuda_error(e);
    return r;
  }
  if (count == 0) r.error = "no GPU found";
  for (int d = 0; d < count; ++d) {
    GpuInfo g;
    g.index = d;
    cudaDeviceProp p{};
    if ((e = cudaGetDeviceProperties(&p, d)) != cudaSuccess || (e = cudaSetDevice(d)) != cudaSuccess) {
      g.error = cuda_error(e);
      r.gpus.push_back(g);
      continue;
    }
    g.name = p.name;
    g.cc_major = p.major;
    g.cc_minor = p.minor;
    g.multiprocessors = p.multiProcessorCount;
    g.l2_bytes = p.l2CacheSize;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) g.free_bytes = int64_t(free_b), g.total_bytes = int64_t(total_b);
    g.kernel_ok = run_test_kernel(&g.error);
    r.gpus.push_back(g);
  }
  return r;
}

}  // namespace ctx
