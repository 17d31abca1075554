// A caching device allocator with exact accounting (internal to core/cuda). Sizes are rounded up
// (512 B below 1 MiB, 2 MiB above) and freed blocks are kept per rounded size for reuse, so that
// "peak GPU memory" is ctxlab's own figure rather than the driver's. When cudaMalloc fails the cache
// is returned to the driver and the call retried once; a second failure throws CudaOutOfMemory with
// the requested and free bytes. With a limit set, holding more than it (in use + cached) fails the
// same way, as if the card had only that much memory. Thread-safe.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cuda/gpu_engine.h"

namespace ctx::cuda {

class DeviceAllocator {
 public:
  DeviceAllocator() = default;
  ~DeviceAllocator();
  DeviceAllocator(const DeviceAllocator&) = delete;
  DeviceAllocator& operator=(const DeviceAllocator&) = delete;

  void* allocate(int64_t bytes);  // never null; bytes == 0 gives a valid 512-byte block
  void release(void* p);          // returns the block to the cache (p may be null)
  void empty_cache();             // gives cached blocks back to the driver
  void set_limit(int64_t bytes);  // 0: none (the card's memory)
  void reset_peak();              // peak = current
  DeviceMemoryStats stats() const;
  // The bytes an allocation of `bytes` takes (what current/peak/reserved count).
  static size_t rounded(int64_t bytes);

 private:
  void free_cached();  // gives the cached blocks back to the driver; mu_ held
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> cached_;  // rounded size -> free blocks
  std::unordered_map<void*, size_t> live_;       // block -> rounded size
  int64_t current_ = 0, peak_ = 0, reserved_ = 0, limit_ = 0;
};

// A typed device buffer owned by an allocator (RAII).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceAllocator& a, int64_t count)
      : alloc_(&a), ptr_(static_cast<T*>(a.allocate(count * int64_t(sizeof(T))))), count_(count) {}
  ~DeviceBuffer() {
    if (alloc_) alloc_->release(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (alloc_) alloc_->release(ptr_);
      alloc_ = o.alloc_, ptr_ = o.ptr_, count_ = o.count_;
      o.alloc_ = nullptr, o.ptr_ = nullptr, o.count_ = 0;
    }
    return *this;
  }
  T* get() const { return ptr_; }
  int64_t size() const { return count_; }
  int64_t bytes() const { return count_ * int64_t(sizeof(T)); }

 private:
  DeviceAllocator* alloc_ = nullptr;
  T* ptr_ = nullptr;
  int64_t count_ = 0;
};

// New buffers holding host float32 data: rounded to bf16 (nearest even), or as float32. Synchronous.
DeviceBuffer<__nv_bfloat16> upload_bf16(DeviceAllocator& a, const float* data, int64_t count);
DeviceBuffer<float> upload_f32(DeviceAllocator& a, const float* data, int64_t count);

}  // namespace ctx::cuda
