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

}  // namespace ctx::cuda
