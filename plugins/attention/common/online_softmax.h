// Online (running-max) softmax shared by `sdpa` and `paged`: the state update, and the fused row
// kernel (one query row against a range of keys of one KV head, in chunks, through a KvView of either
// layout). No score matrix is stored; memory is O(chunk). AVX2 dot/axpy over head_dim.
#pragma once

#include <cstdint>
#include <span>

#include "core/attention/attention_backend.h"
#include "core/attention/kv_view.h"

namespace ctx {

// Running state of one query row's online softmax: max and sum of exp(score - max), and the
// unnormalised output out[head_dim] (divide by sum at the end).
struct OnlineSoftmaxState {
  float max;
  float sum;
  float* out;
};

constexpr int64_t kOnlineChunk = 64;  // keys per softmax update in the kernels built on this

// Folds the scaled scores of n more keys into `st`: raises the running max, rescales sum and out by
// the correction, and turns scores[j] into the weights exp(score - max) (added to sum). The caller
// then adds weights[j] * v_j to st.out.
void online_softmax_update(float* scores, int64_t n, int64_t head_dim, OnlineSoftmaxState& st);

// out[0..head_dim) = softmax_j(scale * q.k_j) weighted sum of v_j over keys j in [first, last].
void attend_row_online(const float* q, const KvView& kv, int64_t kv_head, int64_t first, int64_t last, float scale,
                       float* out);

// Every query row of every sequence through attend_row_online, with the engine's base mask
// (causal + window). Parallel over (row, head).
void attend_batch_online(const AttentionParams& p, std::span<const AttentionSequence> batch);

}  // namespace ctx
