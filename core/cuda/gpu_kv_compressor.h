// KV compression on the GPU (the engine's side of GpuEngineOptions::kv, policy in gpu_kv_policy.h;
// internal to core/cuda): per KV head, score the entries (from the keys, the positions, or for
// snapkv/h2o/tova the attention votes its GpuKvScorer gathered in observe()), select the kept ones exactly as
// core/kv/scored_compressor.cc does (the protected tail plus the top `pick` by score, ties to the
// earlier entry), and move the kept rows, in order, to entries 0..count-1 of the layer (contiguous
// rows or through the paged block table; the engine then returns the blocks past the new length to
// the pool). Two paths with the same result:
//   one eviction (count == length - 1, a decode step's steady state): per head an argmin over the
//     candidates and a shift of the rows after the dropped one (kernels/kv_compress_kernels.h);
//   general: a device radix sort of (head, score, entry) keys, kept flags, a gather and write-back.
// It tracks each layer's entry positions on the device (moved with the entries). Scratch is held and
// grows to the largest layer seen (a host sync only when it grows), so compress() only enqueues work:
// no allocation and no host sync per layer and step. Not thread-safe; work goes on the given stream.
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
  // `shape`: layers, kv_heads and capacity size the positions; the rest sizes the attention scorer
  // (policies with needs_attention()).
  GpuKvCompressor(DeviceAllocator& alloc, const GpuKvPolicy& policy, const GpuKvScoreShape& shape);
  const GpuKvPolicy& policy() const { return policy_; }

  // The scoring hook after KV layer `layer`'s attention (GpuKvScorer::observe; nothing for policies
  // that score without attention).
  void observe(int64_t layer, const KvLayerRows& rows, const bf16* q, int64_t n, const int32_t* before,
               int64_t length_bound, cudaStream_t stream) {
    if (scorer_) scorer_->observe(layer, rows, q, n, before, length_bound, stream);
  }
  // A new sequence: accumulated scores back to zero, entry j of every layer at position j.
  void reset(cudaStream_t stream);
  const GpuKvScorer* scorer() const { return scorer_.get(); }

  // Keeps `count` (< length) of the `length` entries of `rows`, chosen by the policy for KV layer
  // `layer` after a step of n_new rows that brought the tokens seen to `position`, as entries
  // 0..count-1 in order; *device_length (optional) becomes count in stream order. Enqueues only.
  void compress(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count, int64_t n_new,
                int32_t* device_length, cudaStream_t stream);
  // The selection and compaction alone, from scores [kv_head][length] on the device (compress() after
  // scoring; tests): one_eviction false forces the general path.
  void keep(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count,
            const float* scores, bool one_eviction, int32_t* device_length, cudaStream_t stream);
  // positions[h][i]: the position of entry i < length of head h of the layer. Waits for the stream.
  std::vector<std::vector<int64_t>> positions(int64_t layer, int64_t length, cudaStream_t stream) const;

 private:
  template <class T>
  T* scratch(DeviceBuffer<T>& buffer, int64_t n, cudaStream_t stream);
  KvEntryPositions entry_positions(int64_t layer) const;

  DeviceAllocator& alloc_;
  GpuKvPolicy policy_;
  GpuKvScoreShape shape_;
  std::unique_ptr<GpuKvScorer> scorer_;  // snapkv, h2o, tova
  // Entry positions [layers][kv_heads][capacity]: per layer the stored prefix and where the appended
  // entries after it start (KvEntryPositions).
  DeviceBuffer<int32_t> positions_;
  struct Origin {
    int64_t known = 0, from = 0;
  };
  std::vector<Origin> origins_;
  DeviceBuffer<float> scores_;
  DeviceBuffer<uint64_t> keys_, sorted_;
  DeviceBuffer<char> sort_temp_, edges_;
  DeviceBuffer<uint8_t> flags_;
  DeviceBuffer<int32_t> kept_, evicted_;
  DeviceBuffer<bf16> tmp_k_, tmp_v_;
};

}  // namespace ctx::cuda
