// Causal (optionally sliding-window) multi-head attention over a contiguous KV cache, on CPU.
// Query blocks are processed independently (no T x T matrix is held: at most 64 x kv_len scores
// per thread). This is the engine's built-in attention; the attention plugins of later issues
// implement the same contract. Reentrant; parallel over heads and query blocks.
#pragma once

#include <cstdint>

namespace ctx {

struct AttentionParams {
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
  int64_t window = 0;  // 0: full causal; W: query at p sees keys p-W+1..p
};

// q: [n_new, num_heads * head_dim] row-major, rows at positions past_len .. past_len + n_new - 1.
// k, v: one layer of a KvCache ([kv_heads][capacity][head_dim]) holding past_len + n_new positions.
// out: [n_new, num_heads * head_dim]. Query head h reads KV head h / (num_heads / num_kv_heads).
void causal_attention_cpu(const AttentionParams& p, const float* q, int64_t n_new, int64_t past_len, const float* k,
                          const float* v, int64_t capacity, float* out);

}  // namespace ctx
