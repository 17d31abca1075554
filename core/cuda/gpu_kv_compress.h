// KV compression on the GPU, alone (GpuKvCompressor in gpu_kv_compressor.h, as the engine runs it),
// for tests against the CPU plugins: plain C++, no CUDA headers.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/cuda/gpu_kv_policy.h"

namespace ctx::cuda {

// For tests: one layer of random K/V ([kv_head][length][hd] floats, held as bf16; block_size > 0: in
// a paged pool whose block table lists the blocks in reverse) compressed to `count` entries.
// Attention-scored policies (snapkv, h2o, tova) read q: the post-RoPE queries [n_new][heads][hd] of
// the step whose rows are the last n_new entries (held as bf16); the scoring hook runs once, then
// the compression (as after a prefill step of n_new rows).
struct GpuKvCompressCase {
  GpuKvPolicy policy;
  int64_t layer = 0, position = 0, kv_heads = 1, length = 0, hd = 0, count = 0, block_size = 0;
  int64_t heads = 0, n_new = 0;  // attention-scored policies
  float scale = 1.f;
};
struct GpuKvCompressResult {
  std::vector<int32_t> kept;  // [kv_head][count]
  std::vector<float> k, v;    // entries 0..count-1 afterwards: [kv_head][count][hd]
};
// Throws ctx::Unsupported without CUDA.
GpuKvCompressResult gpu_kv_compress(const GpuKvCompressCase& c, std::span<const float> k, std::span<const float> v,
                                    std::span<const float> q = {});

// For tests: the attention votes of the score kernels (kernels/kv_score_kernels.h) alone: query rows
// [row_begin, row_end) of a step of n_new rows over `length` entries (keys [kv_head][length][hd],
// queries [row_end - row_begin][heads][hd], both held as bf16; block_size > 0: paged as above);
// length_bound >= length sizes the grids as the engine's decode step does with its capacity (0: length).
struct GpuKvVotesCase {
  int64_t heads = 1, kv_heads = 1, hd = 0, length = 0, n_new = 0, row_begin = 0, row_end = 0, block_size = 0;
  int64_t length_bound = 0;
  float scale = 1.f;
};
// votes [kv_head][length]: the sum over the rows of their softmax probabilities, divided by the query
// heads per KV head. Throws ctx::Unsupported without CUDA.
std::vector<float> gpu_kv_attention_votes(const GpuKvVotesCase& c, std::span<const float> q, std::span<const float> k);

}  // namespace ctx::cuda
