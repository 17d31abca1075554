// The fused row kernel shared by `sdpa` and `paged`: one query row against a range of keys of one
// KV head, in a single pass with an online (running-max) softmax, reading keys in chunks through a
// KvView of either layout. No score matrix is stored; memory is O(chunk). AVX2 dot/axpy over head_dim.
#pragma once

#include <cstdint>

#include "core/attention/kv_view.h"

namespace ctx {

// Running state of one query row's online softmax: max and sum of exp(score - max), and the
// unnormalised output out[head_dim] (divide by sum at the end).
struct OnlineSoftmaxState {
  float max;
  float sum;
  float* out;
};

constexpr int64_t kOnlineChunk = 64;  // keys per online_softmax_chunk call at most

// Folds n <= kOnlineChunk keys (row pointers k_rows[j], v_rows[j]) into `st`. k_ahead/v_ahead, when
// given, name rows to prefetch (null entries skipped) while this chunk is processed.
void online_softmax_chunk(const float* q, const float* const* k_rows, const float* const* v_rows, int64_t n,
                          int64_t head_dim, float scale, const float* const* k_ahead, const float* const* v_ahead,
                          OnlineSoftmaxState& st);

// out[0..head_dim) = softmax_j(scale * q.k_j) weighted sum of v_j over keys j in [first, last].
void attend_row_online(const float* q, const KvView& kv, int64_t kv_head, int64_t first, int64_t last, float scale,
                       float* out);

}  // namespace ctx

#include <span>

#include "core/attention/attention_backend.h"

namespace ctx {

// Every query row of every sequence through attend_row_online, with the engine's base mask
// (causal + window). Parallel over (row, head).
void attend_batch_online(const AttentionParams& p, std::span<const AttentionSequence> batch);

}  // namespace ctx
