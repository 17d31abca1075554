// Kernels of GPU KV compression (core/cuda/gpu_kv_compress.h; internal to core/cuda): scores per
// (KV head, entry), the per-head top-k selection with the CPU's tie-breaking, and the compaction of
// the kept rows to the front of the layer. Every launcher enqueues on `stream` and checks the launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

// One attention layer's K/V of one sequence: contiguous [kv_head][head_rows][hd] (head_rows = the
// capacity), or paged (pool.table set: the sequence's row of the block table, as sequence 0): the
// pool [kv_head][pool.head_rows()][hd] with entry j of the sequence in block table[j >> pool.shift].
struct KvLayerRows {
  bf16 *k = nullptr, *v = nullptr;
  PagedPool pool;
  int64_t head_rows = 0, kv_heads = 0, hd = 0;  // head_rows: contiguous only

  // On the host (tests) the table must be host memory.
  __host__ __device__ int64_t offset(int64_t h, int64_t j) const {
    return pool.paged() ? pool.offset(0, h, j, hd) : (h * head_rows + j) * hd;
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

// Where each entry came from, moved with the entries: entry j of head h holds position
// positions[h * stride + j] for j < known, else from + j - known (the entries appended since).
struct KvEntryPositions {
  int32_t* positions = nullptr;  // [kv_head][stride]
  int64_t stride = 0, known = 0, from = 0;
};

// After a compaction that kept kept[h * count + i] (increasing): positions[h][i] = the old position of
// that entry for i < count (tmp: kv_heads * count int32 of scratch); device_length (optional) = count.
void launch_kv_compact_positions(const KvEntryPositions& pos, int64_t kv_heads, const int32_t* kept, int64_t count,
                                 int32_t* tmp, int32_t* device_length, cudaStream_t stream);

// The one-eviction path: a layer of `length` entries keeps all but one per head, the one the general
// selection drops (pick = pool - 1 of the candidates j < pool, the rest protected): the lowest score,
// ties to the later entry. The rows after it move up by one in place (entries stay in order; 16-byte
// copies, hd a multiple of 8), with the votes (h2o) and positions; afterwards positions are stored for
// every entry < length - 1 (pos.known = length - 1). Two launches, no allocation, no host sync.
struct KvEvictOneParams {
  KvLayerRows rows;
  int64_t length = 0;             // entries before; length - 1 after
  int64_t pool = 0;               // 1 <= pool <= length
  const float* scores = nullptr;  // [kv_head][length]
  float* votes = nullptr;         // optional [kv_head][votes_stride]: moved with the rows, votes[length - 1] = 0
  int64_t votes_stride = 0;
  KvEntryPositions pos;
  int32_t* device_length = nullptr;  // optional: decremented once
  int32_t* evicted = nullptr;        // scratch [kv_heads]: the dropped entry of each head
  void* edges = nullptr;             // scratch of kv_evict_one_workspace(kv_heads, >= length, hd) bytes
};
int64_t kv_evict_one_workspace(int64_t kv_heads, int64_t length_bound, int64_t hd);
void launch_kv_evict_one(const KvEvictOneParams& p, cudaStream_t stream);

}  // namespace ctx::cuda
