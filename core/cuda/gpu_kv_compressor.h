// KV compression on the GPU (the engine's side of GpuEngineOptions::kv, policy in gpu_kv_policy.h;
// internal to core/cuda): per KV head, score the entries, select the kept ones exactly as
// core/kv/scored_compressor.cc does (the protected tail plus the top `pick` by score, ties to the
// earlier entry: one device radix sort of (head, score, entry) keys), and move the kept rows, in
// order, to entries 0..count-1 of the layer (contiguous rows or through the paged block table; the
// engine then returns the blocks past the new length to the pool). Scratch comes from the engine's
// caching allocator per call. Not thread-safe; work is enqueued on the given stream.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cuda/device_allocator.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/cuda/kernels/kv_compress_kernels.h"

namespace ctx::cuda {

class GpuKvCompressor {
 public:
  GpuKvCompressor(DeviceAllocator& alloc, const GpuKvPolicy& policy) : alloc_(alloc), policy_(policy) {}
  const GpuKvPolicy& policy() const { return policy_; }

  // Keeps `count` (< length) of the `length` entries of `rows`, chosen by the policy for KV layer
  // `layer` after a step that brought the tokens seen to `position`, as entries 0..count-1 in order.
  // With `kept` not null, also copies the kept indices [kv_head][count] there (waits for the stream).
  void compress(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count,
                cudaStream_t stream, std::vector<int32_t>* kept);

 private:
  DeviceAllocator& alloc_;
  GpuKvPolicy policy_;
};

}  // namespace ctx::cuda
