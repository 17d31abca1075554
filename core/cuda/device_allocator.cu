#include "core/cuda/device_allocator.h"

#include <vector>

#include "core/base/dtype.h"
#include "core/cuda/cuda_check.h"

namespace ctx::cuda {

size_t DeviceAllocator::rounded(int64_t bytes) {
  const size_t b = size_t(bytes > 0 ? bytes : 1);
  const size_t unit = b < (size_t(1) << 20) ? 512 : (size_t(2) << 20);
  return (b + unit - 1) / unit * unit;
}

DeviceAllocator::~DeviceAllocator() {
  empty_cache();
  for (auto& [p, size] : live_) cudaFree(p);  // buffers outliving the allocator: no throwing here
}

void* DeviceAllocator::allocate(int64_t bytes) {
  const size_t size = rounded(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  if (auto it = cached_.find(size); it != cached_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
  } else {
    if (limit_ > 0 && reserved_ + int64_t(size) > limit_) free_cached();
    if (limit_ > 0 && reserved_ + int64_t(size) > limit_)
      throw CudaOutOfMemory(str_cat("CUDA out of memory: asked for ", size, " bytes with ", reserved_,
                                    " held of the memory limit of ", limit_, " bytes"),
                            int64_t(size), limit_ - reserved_);
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {  // give the cache back and try once more
      cudaGetLastError();
      free_cached();
      err = cudaMalloc(&p, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      throw CudaOutOfMemory(str_cat("CUDA out of memory: asked for ", size, " bytes, ", free_b, " of ", total_b,
                                    " bytes free (ctxlab holds ", reserved_, ")"),
                            int64_t(size), int64_t(free_b));
    }
    CTX_CUDA_CHECK(err);
    reserved_ += int64_t(size);
  }
  live_[p] = size;
  current_ += int64_t(size);
  peak_ = std::max(peak_, current_);
  return p;
}

void DeviceAllocator::release(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  CTX_CHECK(it != live_.end(), "release of a pointer this allocator did not give out");
  current_ -= int64_t(it->second);
  cached_[it->second].push_back(p);
  live_.erase(it);
}

void DeviceAllocator::free_cached() {
  for (auto& [s, blocks] : cached_)
    for (void* b : blocks) cudaFree(b), reserved_ -= int64_t(s);
  cached_.clear();
}

void DeviceAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  free_cached();
}

void DeviceAllocator::set_limit(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  limit_ = bytes;
}

void DeviceAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  peak_ = current_;
}

DeviceMemoryStats DeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  DeviceMemoryStats s;
  s.current_bytes = current_, s.peak_bytes = peak_, s.reserved_bytes = reserved_;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) s.device_free_bytes = int64_t(free_b), s.device_total_bytes = int64_t(total_b);
  return s;
}

DeviceBuffer<__nv_bfloat16> upload_bf16(DeviceAllocator& a, const float* data, int64_t count) {
  std::vector<uint16_t> host(static_cast<size_t>(count));
  convert_f32_to_bf16(data, host.data(), size_t(count));
  DeviceBuffer<__nv_bfloat16> b(a, count);
  CTX_CUDA_CHECK(cudaMemcpy(b.get(), host.data(), size_t(count) * 2, cudaMemcpyHostToDevice));
  return b;
}

DeviceBuffer<float> upload_f32(DeviceAllocator& a, const float* data, int64_t count) {
  DeviceBuffer<float> b(a, count);
  CTX_CUDA_CHECK(cudaMemcpy(b.get(), data, size_t(count) * 4, cudaMemcpyHostToDevice));
  return b;
}

}  // namespace ctx::cuda
