// The GPU engine's attention kernel (kernels.h: launch_attention, the one the forward pass uses) on
// host tensors, outside a model: for the conformance test against a float64 reference
// (tests/gpu/gpu_attention_test.cc) and for `ctxlab bench gpu-attention`.
//
// A case: a KV cache holding positions 0 .. length - 1 (k, v: [length, kv_heads * head_dim] float,
// rounded to bf16 on upload, laid out as the engine's cache [kv_heads][length][head_dim]) and
// `queries` query rows (q: [queries, heads * head_dim], rounded to bf16) at the last positions
// length - queries .. length - 1; query t sees keys <= its position, and with window > 0 only the
// last `window` of them. Head h reads KV head h / (heads / kv_heads). Output [queries, heads *
// head_dim]: the kernel's bf16 results as float. Throws ctx::Unsupported without CUDA or a GPU.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace ctx::cuda {

struct GpuAttentionCase {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  int64_t length = 0;   // cached positions (the queries' own included)
  int64_t queries = 1;  // 1 = decode
  int64_t window = 0;   // > 0: sliding window
  float scale = 0;      // 0: 1 / sqrt(head_dim)
  int splits = 0;       // chunks of keys per query (split-KV); 0: the engine's choice (64 keys each
                        // for one query, 1 for several)
  bool vectorized = true;  // false: the generic kernel even for head_dim 64/128/256
};

// The engine's split-KV chunk count for `length` keys and `queries` rows (what splits = 0 picks):
// chunks of about 64 keys (16 per warp) for one query, so that even one sequence at 1k context gives
// heads * splits blocks enough to fill the GPU; one chunk for several queries.
inline int default_attention_splits(int64_t length, int64_t queries) {
  return queries == 1 ? int(std::clamp<int64_t>((length + 63) / 64, 1, 256)) : 1;
}

std::vector<float> gpu_attention(const GpuAttentionCase& c, std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v);

struct AttentionTiming {
  int splits = 0;
  double us = 0;           // median microseconds per launch
  double bytes_per_s = 0;  // K and V bytes the launch must read / time
};
// Decode attention (queries = 1) on random bf16 data over enough copies of the cache to defeat the
// L2 cache: median of `reps` timings of 20 back-to-back launches.
AttentionTiming measure_decode_attention(const GpuAttentionCase& c, int reps);

}  // namespace ctx::cuda
