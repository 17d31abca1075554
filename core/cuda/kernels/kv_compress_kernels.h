// Kernels of GPU KV compression (core/cuda/gpu_kv_compress.h; internal to core/cuda): scores per
// (KV head, entry), the per-head top-k selection with the CPU's tie-breaking, and the compaction of
// the kept rows to the front of the layer. Every launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

// One attention layer's K/V of one sequence: contiguous [kv_head][head_rows][hd] (head_rows = the
// capacity), or paged: the pool [kv_head][head_rows = pool_blocks << block_shift][hd] with entry j of
// the sequence in block table[j >> block_shift].
struct KvLayerRows {
  bf16 *k = nullptr, *v = nullptr;
  const int32_t* table = nullptr;  // null: contiguous
  int block_shift = 0;
  int64_t head_rows = 0, kv_heads = 0, hd = 0;

  __host__ __device__ int64_t offset(int64_t h, int64_t j) const {
    const int64_t row = table ? (int64_t(table[j >> block_shift]) << block_shift) | (j & ((int64_t(1) << block_shift) - 1))
                              : j;
    return (h * head_rows + row) * hd;
  }
};

enum class KvScoreKind { kL2NormLow, kL2NormHigh, kStreaming, kRandom };

struct KvScoreParams {
  KvScoreKind kind = KvScoreKind::kL2NormLow;
  int64_t n_sink = 0;     // streaming
  uint64_t hash_base = 0;  // random: kv_random_base(seed, layer, position) (core/kv/random_score.h)
};

// scores[h * length + j] for j < length of every KV head.
void launch_kv_scores(const KvLayerRows& rows, int64_t length, const KvScoreParams& score, float* scores,
                      cudaStream_t stream);

// Sort keys of the candidates j < pool of every head (pool < 2^24, kv_heads < 256): ascending order of
// the keys is head, then descending score (-0 == +0), then ascending j; keys[h * pool + j].
void launch_kv_sort_keys(const float* scores, int64_t kv_heads, int64_t length, int64_t pool, uint64_t* keys,
                         cudaStream_t stream);

// From the keys sorted ascending: flags[h * length + j] = 1 for the first `pick` candidates of each
// head and for the protected tail j >= pool, else 0 (flags all written).
void launch_kv_mark_kept(const uint64_t* sorted, int64_t kv_heads, int64_t length, int64_t pool, int64_t pick,
                         uint8_t* flags, cudaStream_t stream);

// kept[h * count + i] = the i-th flagged j of head h (each head has exactly `count` flags).
void launch_kv_flags_to_indices(const uint8_t* flags, int64_t kv_heads, int64_t length, int64_t count, int32_t* kept,
                                cudaStream_t stream);

// Compaction: tmp_{k,v}[h][i] = row kept[h * count + i] of head h, then rows 0..count-1 of every
// head = tmp (two launches: kept rows may sit where others are written).
void launch_kv_compact(const KvLayerRows& rows, const int32_t* kept, int64_t count, bf16* tmp_k, bf16* tmp_v,
                       cudaStream_t stream);

}  // namespace ctx::cuda
