// Online (running-max) softmax row kernel of `sdpa`: one query row against a range of keys of one KV
// head, in chunks of 64 keys, through a KvView of either layout. No score matrix is stored; memory is
// O(chunk). AVX2 dot/axpy over head_dim.
#pragma once

#include <cstdint>
#include <span>

#include "core/attention/attention_backend.h"
#include "core/attention/kv_view.h"

namespace ctx {

// out[0..head_dim) = softmax_j(scale * q.k_j) weighted sum of v_j over keys j in [first, last].
void attend_row_online(const float* q, const KvView& kv, int64_t kv_head, int64_t first, int64_t last, float scale,
                       float* out);

// Every query row of every sequence through attend_row_online, with the engine's base mask
// (causal + window). Parallel over (row, head).
void attend_batch_online(const AttentionParams& p, std::span<const AttentionSequence> batch);

}  // namespace ctx
