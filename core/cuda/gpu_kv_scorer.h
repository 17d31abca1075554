// Attention scores of GPU KV compression (snapkv, h2o, tova; gpu_kv_policy.h), internal to core/cuda.
// The engine calls observe() after each attention layer's attention, with the step's post-RoPE
// queries still in its buffer: for the rows the policy reads (GpuKvPolicy::attention_rows) the
// softmax attention over the layer's entries (kernels/kv_score_kernels.h, two blockwise passes, no
// [rows x entries] matrix) becomes per-entry votes in a per-layer device buffer [kv_head][capacity],
// replaced each step (snapkv, tova) or added to (h2o: the heavy hitters' accumulated attention).
// Compression then turns a layer's votes into the plugin's scores (scores()) and, for h2o, moves the
// accumulated votes with the kept entries (compacted()). observe() only enqueues kernels (no
// allocation, no host sync), so a decode step with it is captured in the engine's CUDA graph: the
// entry count comes from device memory. Not thread-safe.
#pragma once

#include <cstdint>

#include "core/cuda/device_allocator.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/cuda/kernels/kv_compress_kernels.h"

namespace ctx::cuda {

struct GpuKvScoreShape {
  int64_t layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t capacity = 0;  // entries per layer
  int64_t max_rows = 0;  // the most query rows of one step (the prefill chunk)
  float scale = 1.f;     // the model's softmax scale
};

class GpuKvScorer {
 public:
  GpuKvScorer(DeviceAllocator& alloc, const GpuKvPolicy& policy, const GpuKvScoreShape& shape);

  // After KV layer `layer`'s attention over a step of n query rows q ([n][heads * head_dim], bf16):
  // `before` (device) holds the entries the layer held before the step, the step's n follow them
  // in `rows`; length_bound >= before + n (host: sizes the grids). Nothing for skipped layers or
  // steps the policy does not read.
  void observe(int64_t layer, const KvLayerRows& rows, const bf16* q, int64_t n, const int32_t* before,
               int64_t length_bound, cudaStream_t stream);
  // The plugin's scores [kv_head][length] of the layer's `length` entries after a step of n_new rows.
  void scores(int64_t layer, int64_t length, int64_t n_new, float* scores, cudaStream_t stream) const;
  // After the layer kept kept[h * count + i] of `length` entries (h2o: the votes move with them).
  void compacted(int64_t layer, const int32_t* kept, int64_t count, int64_t length, float* tmp, cudaStream_t stream);
  // Every accumulated vote back to zero (a new sequence).
  void reset(cudaStream_t stream);
  // The layer's votes [kv_head][capacity] (device; tests).
  const float* votes(int64_t layer) const { return votes_.get() + layer * shape_.kv_heads * shape_.capacity; }

 private:
  float* layer_votes(int64_t layer) { return votes_.get() + layer * shape_.kv_heads * shape_.capacity; }

  GpuKvPolicy policy_;
  GpuKvScoreShape shape_;
  DeviceBuffer<float> votes_;   // [layers][kv_heads][capacity]
  DeviceBuffer<float2> stats_;  // the score kernels' workspace
};

}  // namespace ctx::cuda
