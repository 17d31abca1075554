// Kernels of attention-scored GPU KV compression (snapkv, h2o, tova; core/cuda/gpu_kv_scorer.h;
// internal to core/cuda): the softmax attention some query rows of a step give every cached entry,
// summed over the rows and averaged over the query heads of each KV head, computed blockwise in two
// passes without a [rows x entries] matrix:
//   1. row statistics: per (query row, query head) the max and the sum of exp(scale q.k - max) over
//      its visible entries (causal over stored indices: step row r sees entries < before + r + 1),
//      split over entry ranges and merged in pass 2;
//   2. votes: per entry, the sum over rows and heads of exp(scale q.k - max) / (sum * group), each
//      block owning a tile of entries (no atomics: the same inputs give the same bits).
// Then the policy's score per (KV head, entry) from the votes, and the compaction of accumulated
// scores along with the K/V rows. Every launcher enqueues on `stream` and checks the launch; none
// allocates, so the engine's decode step with these launches can be captured in a CUDA graph.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kv_compress_kernels.h"

namespace ctx::cuda {

struct KvAttentionScoreParams {
  const bf16* q = nullptr;            // [rows][heads * hd]: post-RoPE queries of step rows row_begin ..
  KvLayerRows kv;                     // the layer's keys (kv.kv_heads, kv.hd)
  const int32_t* before = nullptr;    // device: entries held before the step (the step's n_new follow)
  int64_t n_new = 0, row_begin = 0, rows = 0, heads = 0;
  float scale = 1.f;                  // the model's softmax scale
  bool accumulate = false;            // votes[h][j] += (h2o) instead of =
  float* votes = nullptr;             // [kv_heads][votes_stride], entries j < before + n_new written
  int64_t votes_stride = 0;
  float2* stats = nullptr;            // workspace of kv_attention_score_workspace(...) float2
  int64_t length_bound = 0;           // host: >= before + n_new (sizes the grids; the kernels read the length)
};

// float2 elements of the workspace a launch with these sizes needs (the most over rows <= max_rows).
int64_t kv_attention_score_workspace(int64_t max_rows, int64_t heads, int64_t kv_heads);
// Pass 1 and pass 2 (head_dim <= 256, heads a multiple of kv_heads).
void launch_kv_attention_votes(const KvAttentionScoreParams& p, cudaStream_t stream);

enum class KvVotesToScores {
  kCopy,        // h2o, tova per_head: score = votes
  kHeadMean,    // tova: score[h][j] = sum over KV heads of votes[.][j] / kv_heads, in head order
  kSnapKvPool,  // snapkv: pooled over the entries before the last `window` ones, which score FLT_MAX
};
struct KvVotesToScoresParams {
  KvVotesToScores kind = KvVotesToScores::kCopy;
  int64_t window = 0, kernel = 1;  // snapkv: the window's entries at the end; odd pooling width
  bool max_pool = false;
};
// scores[h * length + j] for j < length from votes[h * votes_stride + j], as the CPU plugin does.
void launch_kv_votes_to_scores(const float* votes, int64_t votes_stride, int64_t kv_heads, int64_t length,
                               const KvVotesToScoresParams& p, float* scores, cudaStream_t stream);

// After a compaction that kept kept[h * count + i] (increasing) of `length` entries: votes[h][i] =
// old votes[h][kept[...]] for i < count and 0 for count <= i < length (new entries start at zero).
// tmp: kv_heads * count floats of scratch.
void launch_kv_compact_votes(float* votes, int64_t votes_stride, int64_t kv_heads, const int32_t* kept, int64_t count,
                             int64_t length, float* tmp, cudaStream_t stream);

}  // namespace ctx::cuda
