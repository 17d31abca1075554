// KV compression on the GPU (the engine's side of GpuEngineOptions::kv, policy in gpu_kv_policy.h;
// internal to core/cuda): per KV head, score the entries (from the keys, the positions, or for
// snapkv/h2o/tova the attention votes its GpuKvScorer gathered in observe()), select the kept ones exactly as
// core/kv/scored_compressor.cc does (the protected tail plus the top `pick` by score, ties to the
// earlier entry: one device radix sort of (head, score, entry) keys), and move the kept rows, in
// order, to entries 0..count-1 of the layer (contiguous rows or through the paged block table; the
// engine then returns the blocks past the new length to the pool). Scratch comes from the engine's
// caching allocator per call. Not thread-safe; work is enqueued on the given stream.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda/device_allocator.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/cuda/gpu_kv_scorer.h"
#include "core/cuda/kernels/kv_compress_kernels.h"

namespace ctx::cuda {

class GpuKvCompressor {
 public:
  // `scores` sizes the attention scorer (policies with needs_attention(); unused otherwise).
  GpuKvCompressor(DeviceAllocator& alloc, const GpuKvPolicy& policy, const GpuKvScoreShape& scores = {});
  const GpuKvPolicy& policy() const { return policy_; }

  // The scoring hook after KV layer `layer`'s attention (GpuKvScorer::observe; nothing for policies
  // that score without attention).
  void observe(int64_t layer, const KvLayerRows& rows, const bf16* q, int64_t n, const int32_t* before,
               int64_t length_bound, cudaStream_t stream) {
    if (scorer_) scorer_->observe(layer, rows, q, n, before, length_bound, stream);
  }
  void reset(cudaStream_t stream) {  // a new sequence: accumulated scores back to zero
    if (scorer_) scorer_->reset(stream);
  }
  const GpuKvScorer* scorer() const { return scorer_.get(); }

  // Keeps `count` (< length) of the `length` entries of `rows`, chosen by the policy for KV layer
  // `layer` after a step of n_new rows that brought the tokens seen to `position`, as entries
  // 0..count-1 in order. With `kept` not null, also copies the kept indices [kv_head][count] there.
  // Waits for the stream.
  void compress(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count, int64_t n_new,
                cudaStream_t stream, std::vector<int32_t>* kept);

 private:
  DeviceAllocator& alloc_;
  GpuKvPolicy policy_;
  std::unique_ptr<GpuKvScorer> scorer_;  // snapkv, h2o, tova
};

}  // namespace ctx::cuda
