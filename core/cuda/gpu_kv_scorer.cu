// GpuKvScorer (gpu_kv_scorer.h).
#include "core/cuda/gpu_kv_scorer.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/kv_score_kernels.h"

namespace ctx::cuda {

GpuKvScorer::GpuKvScorer(DeviceAllocator& alloc, const GpuKvPolicy& policy, const GpuKvScoreShape& shape)
    : policy_(policy), shape_(shape) {
  CTX_CHECK(policy.needs_attention(), "GpuKvScorer for a policy that scores without attention");
  CTX_CHECK(shape.layers >= 1 && shape.kv_heads >= 1 && shape.heads % shape.kv_heads == 0 && shape.capacity >= 1 &&
                shape.max_rows >= 1,
            "GpuKvScorer: layers ", shape.layers, ", heads ", shape.heads, "/", shape.kv_heads, ", capacity ",
            shape.capacity, ", rows ", shape.max_rows);
  votes_ = DeviceBuffer<float>(alloc, shape.layers * shape.kv_heads * shape.capacity);
  stats_ = DeviceBuffer<float2>(alloc, kv_attention_score_workspace(shape.max_rows, shape.heads, shape.kv_heads));
  reset(nullptr);
  CTX_CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

void GpuKvScorer::reset(cudaStream_t stream) {
  CTX_CUDA_CHECK(cudaMemsetAsync(votes_.get(), 0, size_t(votes_.bytes()), stream));
}

void GpuKvScorer::observe(int64_t layer, const KvLayerRows& rows, const bf16* q, int64_t n, const int32_t* before,
                          int64_t length_bound, cudaStream_t stream) {
  const GpuKvPolicy::Rows r = policy_.attention_rows(n);
  if (r.empty() || policy_.budget.skips(layer)) return;
  CTX_CHECK(n <= shape_.max_rows && length_bound <= shape_.capacity, "GPU KV scores: a step of ", n,
            " rows (at most ", shape_.max_rows, "), length bound ", length_bound, " (capacity ", shape_.capacity, ")");
  KvAttentionScoreParams p;
  p.q = q + r.begin * shape_.heads * shape_.head_dim;
  p.kv = rows;
  p.before = before;
  p.n_new = n, p.row_begin = r.begin, p.rows = r.end - r.begin, p.heads = shape_.heads;
  p.scale = shape_.scale;
  p.accumulate = policy_.accumulates();
  p.votes = layer_votes(layer), p.votes_stride = shape_.capacity;
  p.stats = stats_.get();
  p.length_bound = length_bound;
  launch_kv_attention_votes(p, stream);
}

void GpuKvScorer::scores(int64_t layer, int64_t length, int64_t n_new, float* scores, cudaStream_t stream) const {
  KvVotesToScoresParams p;
  switch (policy_.method) {
    case GpuKvMethod::kSnapKv:
      p.kind = KvVotesToScores::kSnapKvPool;
      p.window = std::min(policy_.window, n_new), p.kernel = policy_.kernel, p.max_pool = policy_.max_pool;
      break;
    case GpuKvMethod::kTova: p.kind = policy_.per_head ? KvVotesToScores::kCopy : KvVotesToScores::kHeadMean; break;
    default: p.kind = KvVotesToScores::kCopy; break;  // h2o
  }
  launch_kv_votes_to_scores(votes(layer), shape_.capacity, shape_.kv_heads, length, p, scores, stream);
}

void GpuKvScorer::compacted(int64_t layer, const int32_t* kept, int64_t count, int64_t length, float* tmp,
                            cudaStream_t stream) {
  if (!policy_.accumulates()) return;  // snapkv and tova vote afresh every step
  launch_kv_compact_votes(layer_votes(layer), shape_.capacity, shape_.kv_heads, kept, count, length, tmp, stream);
}

}  // namespace ctx::cuda
