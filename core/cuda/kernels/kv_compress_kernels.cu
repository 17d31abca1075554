// KV compression kernels (kv_compress_kernels.h): scores, sort keys, kept flags, kept indices, and
// the compaction (gather into scratch, then write back to the front).
#include <cub/block/block_scan.cuh>

#include <algorithm>
#include <cfloat>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/kv_compress_kernels.h"
#include "core/kv/random_score.h"

namespace ctx::cuda {

namespace {

// One thread per (head, entry): the l2 norm is summed in double in element order, as the CPU plugin
// does over float keys (here the bf16 keys the GPU holds).
__global__ void kv_scores_kernel(KvLayerRows rows, int64_t length, KvScoreParams sp, float* scores) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows.kv_heads * length) return;
  const int64_t h = i / length, j = i % length;
  float s = 0.f;
  switch (sp.kind) {
    case KvScoreKind::kL2NormLow:
    case KvScoreKind::kL2NormHigh: {
      const bf16* k = rows.k + rows.offset(h, j);
      double ss = 0;
      for (int64_t d = 0; d < rows.hd; ++d) {
        const double x = double(__bfloat162float(k[d]));
        ss += x * x;
      }
      const float norm = float(sqrt(ss));
      s = sp.kind == KvScoreKind::kL2NormLow ? -norm : norm;
      break;
    }
    case KvScoreKind::kStreaming: s = j < sp.n_sink ? FLT_MAX : float(j); break;
    case KvScoreKind::kRandom: s = kv_random_score(sp.hash_base, h, j); break;
  }
  scores[i] = s;
}

// Order-preserving map of a float to uint32 (-0 and +0 map alike, as they compare equal).
__device__ inline uint32_t ordered_bits(float f) {
  if (f == 0.f) f = 0.f;
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__global__ void kv_sort_keys_kernel(const float* scores, int64_t kv_heads, int64_t length, int64_t pool,
                                    uint64_t* keys) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= kv_heads * pool) return;
  const int64_t h = i / pool, j = i % pool;
  // Descending score: the complement of its ordered bits ascends.
  const uint64_t score_bits = uint64_t(~ordered_bits(scores[h * length + j]));
  keys[i] = (uint64_t(h) << 56) | (score_bits << 24) | uint64_t(j);
}

__global__ void kv_mark_kept_kernel(const uint64_t* sorted, int64_t kv_heads, int64_t length, int64_t pool,
                                    int64_t pick, uint8_t* flags) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= kv_heads * length) return;
  const int64_t h = i / length, j = i % length;
  if (j >= pool) flags[i] = 1;  // the protected tail
  if (j < pick) flags[h * length + int64_t(sorted[h * pool + j] & 0xffffffu)] = 1;
}

// One block per head: an exclusive scan of the flags, tile by tile, writes each flagged j to its rank.
constexpr int kScanThreads = 256;
__global__ void kv_flags_to_indices_kernel(const uint8_t* flags, int64_t length, int64_t count, int32_t* kept) {
  using Scan = cub::BlockScan<int, kScanThreads>;
  __shared__ typename Scan::TempStorage temp;
  const int64_t h = blockIdx.x;
  const uint8_t* f = flags + h * length;
  int32_t* out = kept + h * count;
  int64_t base = 0;
  for (int64_t j0 = 0; j0 < length; j0 += kScanThreads) {
    const int64_t j = j0 + threadIdx.x;
    const int flag = j < length ? int(f[j]) : 0;
    int rank = 0, total = 0;
    Scan(temp).ExclusiveSum(flag, rank, total);
    if (flag && base + rank < count) out[base + rank] = int32_t(j);
    base += total;
    __syncthreads();  // temp is reused by the next tile
  }
}

// grid (count, kv_heads), block hd: element e of kept row i of head h.
__global__ void kv_gather_kernel(KvLayerRows rows, const int32_t* kept, int64_t count, bf16* tmp_k, bf16* tmp_v) {
  const int64_t i = blockIdx.x, h = blockIdx.y;
  const int64_t src = rows.offset(h, kept[h * count + i]), dst = (h * count + i) * rows.hd;
  for (int64_t e = threadIdx.x; e < rows.hd; e += blockDim.x) tmp_k[dst + e] = rows.k[src + e], tmp_v[dst + e] = rows.v[src + e];
}

__global__ void kv_write_back_kernel(KvLayerRows rows, int64_t count, const bf16* tmp_k, const bf16* tmp_v) {
  const int64_t i = blockIdx.x, h = blockIdx.y;
  const int64_t src = (h * count + i) * rows.hd, dst = rows.offset(h, i);
  for (int64_t e = threadIdx.x; e < rows.hd; e += blockDim.x) rows.k[dst + e] = tmp_k[src + e], rows.v[dst + e] = tmp_v[src + e];
}

// Entry j's position (KvEntryPositions).
__device__ inline int32_t position_of(const KvEntryPositions& pos, int64_t h, int64_t j) {
  return j < pos.known ? pos.positions[h * pos.stride + j] : int32_t(pos.from + j - pos.known);
}

__global__ void kv_gather_positions_kernel(KvEntryPositions pos, int64_t kv_heads, const int32_t* kept, int64_t count,
                                           int32_t* tmp) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= kv_heads * count) return;
  tmp[i] = position_of(pos, i / count, kept[i]);
}

__global__ void kv_write_positions_kernel(KvEntryPositions pos, int64_t kv_heads, int64_t count, const int32_t* tmp,
                                          int32_t* device_length) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i == 0 && device_length) *device_length = int32_t(count);
  if (i >= kv_heads * count) return;
  pos.positions[(i / count) * pos.stride + i % count] = tmp[i];
}

// The one-eviction path. The shift moves destination rows d in [e, length - 1) from d + 1 in chunks of
// `rows` rows, one block per (chunk, head); each block reads all its sources into registers before
// writing. The only source a block reads that another block writes is the first destination of the
// next chunk, row e + (c + 1) * rows: the select kernel saves it (the chunk's edge) beforehand.
constexpr int kEvictThreads = 256, kEvictItems = 8;  // 16-byte items per thread: a chunk's K and V rows

struct EvictGeometry {
  int64_t vecs, rows, chunks;  // 16-byte vectors per row; rows per chunk (<= threads); chunks of `length` rows
  __host__ __device__ EvictGeometry(int64_t hd, int64_t length)
      : vecs(hd / 8),
        rows(kEvictThreads * kEvictItems / (2 * vecs) < kEvictThreads ? kEvictThreads * kEvictItems / (2 * vecs)
                                                                      : kEvictThreads),
        chunks((length + rows - 1) / rows) {}
};

struct EvictEdges {  // views of the workspace: per (head, chunk) the edge row (K then V), vote, position
  uint4* rows;
  float* votes;
  int32_t* positions;
  __host__ __device__ EvictEdges(void* base, int64_t kv_heads, const EvictGeometry& g) {
    rows = static_cast<uint4*>(base);
    votes = reinterpret_cast<float*>(rows + kv_heads * g.chunks * 2 * g.vecs);
    positions = reinterpret_cast<int32_t*>(votes + kv_heads * g.chunks);
  }
};

__device__ inline const uint4* row_vecs(const KvLayerRows& rows, int kv, int64_t h, int64_t j) {
  return reinterpret_cast<const uint4*>((kv ? rows.v : rows.k) + rows.offset(h, j));
}

// Does candidate (s, j) go before (best, at)? The lowest score goes, ties to the later entry.
__device__ inline bool evicts_first(float s, int64_t j, float best, int64_t at) {
  return j >= 0 && (at < 0 || s < best || (s == best && j > at));
}

// One block per head: the evicted entry, the positions [known, e) stored, the chunks' edges saved.
__global__ void kv_evict_select_kernel(KvEvictOneParams p) {
  const int64_t h = blockIdx.x;
  const float* s = p.scores + h * p.length;
  float best = 0.f;
  int64_t at = -1;
  for (int64_t j = threadIdx.x; j < p.pool; j += blockDim.x)
    if (evicts_first(s[j], j, best, at)) best = s[j], at = j;
  for (int off = 16; off > 0; off >>= 1) {
    const float ob = __shfl_down_sync(0xffffffffu, best, off);
    const int64_t oa = __shfl_down_sync(0xffffffffu, at, off);
    if (evicts_first(ob, oa, best, at)) best = ob, at = oa;
  }
  __shared__ float warp_best[kEvictThreads / 32];
  __shared__ int64_t warp_at[kEvictThreads / 32];
  __shared__ int64_t evicted;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_best[warp] = best, warp_at[warp] = at;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w)
      if (evicts_first(warp_best[w], warp_at[w], best, at)) best = warp_best[w], at = warp_at[w];
    evicted = at;
    p.evicted[h] = int32_t(at);
    if (h == 0 && p.device_length) *p.device_length -= 1;
    if (p.votes && at == p.length - 1) p.votes[h * p.votes_stride + at] = 0.f;  // no shift block runs
  }
  __syncthreads();
  const int64_t e = evicted;
  for (int64_t j = p.pos.known + threadIdx.x; j < e; j += blockDim.x)
    p.pos.positions[h * p.pos.stride + j] = int32_t(p.pos.from + j - p.pos.known);
  const EvictGeometry g(p.rows.hd, p.length);
  const EvictEdges edges(p.edges, p.rows.kv_heads, g);
  for (int64_t it = threadIdx.x; it < g.chunks * 2 * g.vecs; it += blockDim.x) {
    const int64_t c = it / (2 * g.vecs), r = it % (2 * g.vecs), row = e + (c + 1) * g.rows;
    if (row < p.length) edges.rows[h * g.chunks * 2 * g.vecs + it] = row_vecs(p.rows, int(r / g.vecs), h, row)[r % g.vecs];
  }
  for (int64_t c = threadIdx.x; c < g.chunks; c += blockDim.x) {
    const int64_t row = e + (c + 1) * g.rows;
    if (row >= p.length) continue;
    if (p.votes) edges.votes[h * g.chunks + c] = p.votes[h * p.votes_stride + row];
    edges.positions[h * g.chunks + c] = position_of(p.pos, h, row);
  }
}

// grid (chunks, kv_heads): destinations d0 .. d0 + n - 1 of chunk c of head h from d + 1.
__global__ void kv_evict_shift_kernel(KvEvictOneParams p) {
  const int64_t c = blockIdx.x, h = blockIdx.y;
  const EvictGeometry g(p.rows.hd, p.length);
  const int64_t e = p.evicted[h], d0 = e + c * g.rows;
  if (d0 >= p.length - 1) return;
  const int64_t n = min(g.rows, p.length - 1 - d0);
  const EvictEdges edges(p.edges, p.rows.kv_heads, g);
  uint4 buf[kEvictItems];
#pragma unroll
  for (int k = 0; k < kEvictItems; ++k) {
    const int64_t it = threadIdx.x + int64_t(k) * kEvictThreads, r = it / (2 * g.vecs), x = it % (2 * g.vecs);
    if (r >= n) continue;
    buf[k] = r == g.rows - 1 ? edges.rows[(h * g.chunks + c) * 2 * g.vecs + x]
                             : row_vecs(p.rows, int(x / g.vecs), h, d0 + r + 1)[x % g.vecs];
  }
  float vote = 0.f;
  int32_t position = 0;
  if (threadIdx.x < n) {
    const int64_t r = threadIdx.x;
    const bool edge = r == g.rows - 1;
    if (p.votes) vote = edge ? edges.votes[h * g.chunks + c] : p.votes[h * p.votes_stride + d0 + r + 1];
    position = edge ? edges.positions[h * g.chunks + c] : position_of(p.pos, h, d0 + r + 1);
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < kEvictItems; ++k) {
    const int64_t it = threadIdx.x + int64_t(k) * kEvictThreads, r = it / (2 * g.vecs), x = it % (2 * g.vecs);
    if (r >= n) continue;
    const int kv = int(x / g.vecs);
    reinterpret_cast<uint4*>((kv ? p.rows.v : p.rows.k) + p.rows.offset(h, d0 + r))[x % g.vecs] = buf[k];
  }
  if (threadIdx.x < n) {
    if (p.votes) p.votes[h * p.votes_stride + d0 + threadIdx.x] = vote;
    p.pos.positions[h * p.pos.stride + d0 + threadIdx.x] = position;
  }
  // The last chunk read the newest entry's vote: it starts over at zero (as the general path leaves it).
  if (p.votes && threadIdx.x == 0 && d0 + n == p.length - 1) p.votes[h * p.votes_stride + p.length - 1] = 0.f;
}

unsigned blocks_for(int64_t n, int threads) { return unsigned((n + threads - 1) / threads); }

}  // namespace

void launch_kv_scores(const KvLayerRows& rows, int64_t length, const KvScoreParams& score, float* scores,
                      cudaStream_t stream) {
  if (rows.kv_heads * length == 0) return;
  kv_scores_kernel<<<blocks_for(rows.kv_heads * length, 256), 256, 0, stream>>>(rows, length, score, scores);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_kv_sort_keys(const float* scores, int64_t kv_heads, int64_t length, int64_t pool, uint64_t* keys,
                         cudaStream_t stream) {
  CTX_CHECK(pool < (int64_t(1) << 24) && kv_heads < 256 && pool <= length, "KV sort keys: pool ", pool, ", kv_heads ",
            kv_heads);
  if (kv_heads * pool == 0) return;
  kv_sort_keys_kernel<<<blocks_for(kv_heads * pool, 256), 256, 0, stream>>>(scores, kv_heads, length, pool, keys);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_kv_mark_kept(const uint64_t* sorted, int64_t kv_heads, int64_t length, int64_t pool, int64_t pick,
                         uint8_t* flags, cudaStream_t stream) {
  CTX_CHECK(pick <= pool && pool <= length, "KV mark kept: pick ", pick, ", pool ", pool, ", length ", length);
  if (kv_heads * length == 0) return;
  CTX_CUDA_CHECK(cudaMemsetAsync(flags, 0, size_t(kv_heads * length), stream));
  kv_mark_kept_kernel<<<blocks_for(kv_heads * length, 256), 256, 0, stream>>>(sorted, kv_heads, length, pool, pick,
                                                                               flags);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_kv_flags_to_indices(const uint8_t* flags, int64_t kv_heads, int64_t length, int64_t count, int32_t* kept,
                                cudaStream_t stream) {
  if (kv_heads == 0) return;
  kv_flags_to_indices_kernel<<<unsigned(kv_heads), kScanThreads, 0, stream>>>(flags, length, count, kept);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_kv_compact(const KvLayerRows& rows, const int32_t* kept, int64_t count, bf16* tmp_k, bf16* tmp_v,
                       cudaStream_t stream) {
  if (count == 0 || rows.kv_heads == 0) return;
  const dim3 grid(unsigned(count), unsigned(rows.kv_heads));
  const unsigned threads = unsigned(std::min<int64_t>(256, (rows.hd + 31) / 32 * 32));
  kv_gather_kernel<<<grid, threads, 0, stream>>>(rows, kept, count, tmp_k, tmp_v);
  CTX_CUDA_CHECK_LAUNCH();
  kv_write_back_kernel<<<grid, threads, 0, stream>>>(rows, count, tmp_k, tmp_v);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_kv_compact_positions(const KvEntryPositions& pos, int64_t kv_heads, const int32_t* kept, int64_t count,
                                 int32_t* tmp, int32_t* device_length, cudaStream_t stream) {
  if (kv_heads * count == 0) return;
  kv_gather_positions_kernel<<<blocks_for(kv_heads * count, 256), 256, 0, stream>>>(pos, kv_heads, kept, count, tmp);
  CTX_CUDA_CHECK_LAUNCH();
  kv_write_positions_kernel<<<blocks_for(kv_heads * count, 256), 256, 0, stream>>>(pos, kv_heads, count, tmp,
                                                                                   device_length);
  CTX_CUDA_CHECK_LAUNCH();
}

int64_t kv_evict_one_workspace(int64_t kv_heads, int64_t length_bound, int64_t hd) {
  const EvictGeometry g(hd, std::max<int64_t>(1, length_bound));
  return kv_heads * g.chunks * (2 * g.vecs * 16 + 8);
}

void launch_kv_evict_one(const KvEvictOneParams& p, cudaStream_t stream) {
  const int64_t kv_heads = p.rows.kv_heads;
  CTX_CHECK(p.rows.hd % 8 == 0 && p.rows.hd >= 8 && p.rows.hd <= 1024 && p.pool >= 1 && p.pool <= p.length &&
                p.pos.positions && p.pos.known <= p.length && p.length < (int64_t(1) << 31),
            "KV evict one: head_dim ", p.rows.hd, ", pool ", p.pool, " of ", p.length, ", known ", p.pos.known);
  if (kv_heads == 0 || p.length < 2) return;
  kv_evict_select_kernel<<<unsigned(kv_heads), kEvictThreads, 0, stream>>>(p);
  CTX_CUDA_CHECK_LAUNCH();
  const EvictGeometry g(p.rows.hd, p.length);
  kv_evict_shift_kernel<<<dim3(unsigned(g.chunks), unsigned(kv_heads)), kEvictThreads, 0, stream>>>(p);
  CTX_CUDA_CHECK_LAUNCH();
}

}  // namespace ctx::cuda
