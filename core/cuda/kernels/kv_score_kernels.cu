// Attention-score kernels of GPU KV compression (kv_score_kernels.h): row statistics (pass 1), votes
// (pass 2), the policies' scores from the votes, and the compaction of accumulated votes.
#include <algorithm>
#include <cfloat>
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/kv_score_kernels.h"

namespace ctx::cuda {

namespace {

constexpr int kThreads = 256;        // entries per tile of keys: one per thread
constexpr int kPairs = 16;           // (query row, query head) pairs per tile of queries
constexpr int kMaxHd = 256;
constexpr int kMaxSplits = 64;       // pass 1: entry ranges per tile of queries
constexpr int64_t kTargetBlocks = 264;  // pass 1 splits the entries until about this many blocks run
constexpr int64_t kVoteBlocks = 2048;   // pass 2: at most this many blocks (over KV heads), grid-striding

struct Geometry {
  int64_t group = 1, pairs = 0, tiles = 0;
  int splits = 1;
};

Geometry geometry(int64_t rows, int64_t heads, int64_t kv_heads, int64_t length_bound) {
  Geometry g;
  g.group = heads / kv_heads;
  g.pairs = rows * g.group;
  g.tiles = (g.pairs + kPairs - 1) / kPairs;
  int64_t s = std::max<int64_t>(1, kTargetBlocks / (g.tiles * kv_heads));
  s = std::min<int64_t>({s, kMaxSplits, std::max<int64_t>(1, (length_bound + kThreads - 1) / kThreads)});
  g.splits = int(s);
  return g;
}

// Merges the softmax statistics (m2, l2) into (m, l): max and sum of exp(x - max).
__device__ __forceinline__ void merge_stats(float& m, float& l, float m2, float l2) {
  const float mx = fmaxf(m, m2);
  if (mx == -INFINITY) return;
  l = l * expf(m - mx) + l2 * expf(m2 - mx);
  m = mx;
}

// The query pairs t0 .. t0 + nt - 1 of KV head g into qs [kPairs][hd_pad] (float, zero-padded) and
// each pair's visible entry count into vis (pair t = scored row (t0 + t) / group, head g * group +
// (t0 + t) % group). Every thread calls it; the caller synchronises before reading.
__device__ void load_query_tile(const KvAttentionScoreParams& p, int g, int group, int64_t t0, int nt, int before,
                                float* qs, int* vis) {
  const int hd = int(p.kv.hd), hd_pad = (hd + 7) / 8 * 8;
  for (int idx = threadIdx.x; idx < kPairs * hd_pad; idx += blockDim.x) {
    const int t = idx / hd_pad, d = idx % hd_pad;
    float v = 0.f;
    if (t < nt && d < hd) {
      const int64_t pair = t0 + t, r = pair / group, head = int64_t(g) * group + pair % group;
      v = __bfloat162float(p.q[(r * p.heads + head) * hd + d]);
    }
    qs[idx] = v;
  }
  if (threadIdx.x < kPairs) {
    const int t = threadIdx.x;
    vis[t] = t < nt ? before + int(p.row_begin + (t0 + t) / group) + 1 : 0;
  }
}

// s[t] = q_t . k for the nt pairs of the tile, float32 in element order.
__device__ __forceinline__ void dot_tile(const bf16* k, const float* qs, int hd, int nt, float (&s)[kPairs]) {
  const int hd_pad = (hd + 7) / 8 * 8;
#pragma unroll
  for (int t = 0; t < kPairs; ++t) s[t] = 0.f;
  for (int d0 = 0; d0 < hd_pad; d0 += 8) {
    float kv[8];
    if (hd % 8 == 0) {
      const uint4 raw = *reinterpret_cast<const uint4*>(k + d0);
      const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __bfloat1622float2(h2[e]);
        kv[2 * e] = f.x, kv[2 * e + 1] = f.y;
      }
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) kv[e] = d0 + e < hd ? __bfloat162float(k[d0 + e]) : 0.f;
    }
#pragma unroll
    for (int t = 0; t < kPairs; ++t) {
      if (t < nt) {
        const float4 a = *reinterpret_cast<const float4*>(qs + t * hd_pad + d0);
        const float4 b = *reinterpret_cast<const float4*>(qs + t * hd_pad + d0 + 4);
        float acc = s[t];
        acc = fmaf(a.x, kv[0], acc), acc = fmaf(a.y, kv[1], acc), acc = fmaf(a.z, kv[2], acc), acc = fmaf(a.w, kv[3], acc);
        acc = fmaf(b.x, kv[4], acc), acc = fmaf(b.y, kv[5], acc), acc = fmaf(b.z, kv[6], acc), acc = fmaf(b.w, kv[7], acc);
        s[t] = acc;
      }
    }
  }
}

// Pass 1. grid (tiles, kv_heads, splits): the max and exp-sum of one tile of query pairs over one
// range of its visible entries, into stats[((g * tiles * kPairs) + pair) * splits + split].
__global__ void __launch_bounds__(kThreads) kv_score_stats_kernel(KvAttentionScoreParams p, int group, int splits) {
  __shared__ __align__(16) float qs[kPairs * kMaxHd];
  __shared__ int vis[kPairs];
  __shared__ float2 red[kThreads / 32][kPairs];
  const int g = blockIdx.y, split = blockIdx.z;
  const int64_t t0 = int64_t(blockIdx.x) * kPairs, pairs = p.rows * group;
  const int nt = int(min(int64_t(kPairs), pairs - t0)), hd = int(p.kv.hd);
  load_query_tile(p, g, group, t0, nt, *p.before, qs, vis);
  __syncthreads();
  const int end = vis[nt - 1];  // the last pair sees the most entries
  const int per = ((end + splits - 1) / splits + kThreads - 1) / kThreads * kThreads;
  const int j0 = split * per, j1 = min(end, j0 + per);
  float m[kPairs], l[kPairs];
#pragma unroll
  for (int t = 0; t < kPairs; ++t) m[t] = -INFINITY, l[t] = 0.f;
  for (int j = j0 + threadIdx.x; j < j1; j += kThreads) {
    float s[kPairs];
    dot_tile(p.kv.k + p.kv.offset(g, j), qs, hd, nt, s);
#pragma unroll
    for (int t = 0; t < kPairs; ++t)
      if (t < nt && j < vis[t]) {
        const float x = s[t] * p.scale;
        if (x > m[t]) {
          l[t] = l[t] * expf(m[t] - x) + 1.f;
          m[t] = x;
        } else {
          l[t] += expf(x - m[t]);
        }
      }
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int t = 0; t < kPairs; ++t) {
    float mt = m[t], lt = l[t];
    for (int o = 16; o > 0; o >>= 1) {
      const float m2 = __shfl_xor_sync(0xffffffffu, mt, o), l2 = __shfl_xor_sync(0xffffffffu, lt, o);
      merge_stats(mt, lt, m2, l2);
    }
    if (lane == 0) red[warp][t] = make_float2(mt, lt);
  }
  __syncthreads();
  if (threadIdx.x < nt) {
    const int t = threadIdx.x;
    float mt = -INFINITY, lt = 0.f;
    for (int w = 0; w < kThreads / 32; ++w) merge_stats(mt, lt, red[w][t].x, red[w][t].y);
    p.stats[((int64_t(g) * gridDim.x * kPairs) + t0 + t) * splits + split] = make_float2(mt, lt);
  }
}

// Pass 2. grid (x, kv_heads): each block strides over tiles of kThreads entries; a thread sums the
// probabilities every query pair gives its entry, divided by the group size, into votes.
__global__ void __launch_bounds__(kThreads) kv_score_votes_kernel(KvAttentionScoreParams p, int group, int splits) {
  __shared__ __align__(16) float qs[kPairs * kMaxHd];
  __shared__ int vis[kPairs];
  __shared__ float mx[kPairs], inv[kPairs];
  const int g = blockIdx.y, hd = int(p.kv.hd);
  const int before = *p.before, length = before + int(p.n_new);
  const int64_t pairs = p.rows * group, tiles = (pairs + kPairs - 1) / kPairs;
  const float inv_group = 1.f / float(group);
  for (int e0 = int(blockIdx.x) * kThreads; e0 < length; e0 += int(gridDim.x) * kThreads) {
    const int j = e0 + threadIdx.x;
    const bf16* k = j < length ? p.kv.k + p.kv.offset(g, j) : nullptr;
    float acc = 0.f;
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t t0 = tile * kPairs;
      const int nt = int(min(int64_t(kPairs), pairs - t0));
      __syncthreads();  // the previous tile's queries and statistics are no longer read
      load_query_tile(p, g, group, t0, nt, before, qs, vis);
      if (threadIdx.x < kPairs) {
        const int t = threadIdx.x;
        float mt = -INFINITY, lt = 0.f;
        if (t < nt) {
          const float2* st = p.stats + ((int64_t(g) * tiles * kPairs) + t0 + t) * splits;
          for (int s = 0; s < splits; ++s) merge_stats(mt, lt, st[s].x, st[s].y);
        }
        mx[t] = mt;
        inv[t] = lt > 0.f ? inv_group / lt : 0.f;
      }
      __syncthreads();
      if (e0 >= vis[nt - 1]) continue;  // no pair of this tile sees these entries (the same for the block)
      if (j < vis[nt - 1]) {
        float s[kPairs];
        dot_tile(k, qs, hd, nt, s);
#pragma unroll
        for (int t = 0; t < kPairs; ++t)
          if (t < nt && j < vis[t]) acc += expf(s[t] * p.scale - mx[t]) * inv[t];
      }
    }
    if (j < length) {
      float* out = p.votes + int64_t(g) * p.votes_stride + j;
      *out = p.accumulate ? *out + acc : acc;
    }
  }
}

__global__ void kv_votes_to_scores_kernel(const float* votes, int64_t stride, int64_t kv_heads, int64_t length,
                                          KvVotesToScoresParams sp, float* scores) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= kv_heads * length) return;
  const int64_t h = i / length, j = i % length;
  float s = 0.f;
  switch (sp.kind) {
    case KvVotesToScores::kCopy: s = votes[h * stride + j]; break;
    case KvVotesToScores::kHeadMean:  // tova_compressor.cc: mean[j] += sc[j] / num_kv_heads, head by head
      for (int64_t hh = 0; hh < kv_heads; ++hh) s += votes[hh * stride + j] / float(kv_heads);
      break;
    case KvVotesToScores::kSnapKvPool: {  // snapkv_compressor.cc
      const int64_t prefix = length - sp.window, half = sp.kernel / 2;
      if (j >= prefix) {
        s = FLT_MAX;
        break;
      }
      const int64_t lo = j - half > 0 ? j - half : 0, hi = j + half + 1 < prefix ? j + half + 1 : prefix;
      float pooled = sp.max_pool ? -FLT_MAX : 0.f;
      for (int64_t e = lo; e < hi; ++e) pooled = sp.max_pool ? fmaxf(pooled, votes[h * stride + e]) : pooled + votes[h * stride + e];
      s = sp.max_pool ? pooled : pooled / float(sp.kernel);
      break;
    }
  }
  scores[i] = s;
}

__global__ void kv_gather_votes_kernel(const float* votes, int64_t stride, int64_t kv_heads, const int32_t* kept,
                                       int64_t count, float* tmp) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= kv_heads * count) return;
  tmp[i] = votes[(i / count) * stride + kept[i]];
}

__global__ void kv_write_votes_kernel(float* votes, int64_t stride, int64_t kv_heads, int64_t count, int64_t length,
                                      const float* tmp) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= kv_heads * length) return;
  const int64_t h = i / length, j = i % length;
  votes[h * stride + j] = j < count ? tmp[h * count + j] : 0.f;
}

unsigned blocks_for(int64_t n, int threads) { return unsigned((n + threads - 1) / threads); }

}  // namespace

int64_t kv_attention_score_workspace(int64_t max_rows, int64_t heads, int64_t kv_heads) {
  // splits > 1 only while tiles * kv_heads * splits <= kTargetBlocks
  const Geometry g = geometry(std::max<int64_t>(1, max_rows), heads, kv_heads, 0);
  return kPairs * std::max(g.tiles * kv_heads, kTargetBlocks);
}

void launch_kv_attention_votes(const KvAttentionScoreParams& p, cudaStream_t stream) {
  const int64_t kv_heads = p.kv.kv_heads;
  CTX_CHECK(p.kv.hd >= 1 && p.kv.hd <= kMaxHd && kv_heads >= 1 && p.heads % kv_heads == 0 && p.rows >= 1 &&
                p.row_begin + p.rows <= p.n_new && p.length_bound < (int64_t(1) << 31),
            "KV attention votes: head_dim ", p.kv.hd, ", heads ", p.heads, "/", kv_heads, ", rows ", p.row_begin, "+",
            p.rows, " of ", p.n_new, ", length bound ", p.length_bound);
  const Geometry g = geometry(p.rows, p.heads, kv_heads, p.length_bound);
  kv_score_stats_kernel<<<dim3(unsigned(g.tiles), unsigned(kv_heads), unsigned(g.splits)), kThreads, 0, stream>>>(
      p, int(g.group), g.splits);
  CTX_CUDA_CHECK_LAUNCH();
  const int64_t x = std::min<int64_t>(blocks_for(p.length_bound, kThreads), std::max<int64_t>(1, kVoteBlocks / kv_heads));
  kv_score_votes_kernel<<<dim3(unsigned(std::max<int64_t>(1, x)), unsigned(kv_heads)), kThreads, 0, stream>>>(
      p, int(g.group), g.splits);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_kv_votes_to_scores(const float* votes, int64_t votes_stride, int64_t kv_heads, int64_t length,
                               const KvVotesToScoresParams& p, float* scores, cudaStream_t stream) {
  CTX_CHECK(p.kind != KvVotesToScores::kSnapKvPool || (p.window >= 1 && p.window <= length && p.kernel >= 1),
            "snapkv scores: window ", p.window, " of ", length, ", kernel ", p.kernel);
  if (kv_heads * length == 0) return;
  kv_votes_to_scores_kernel<<<blocks_for(kv_heads * length, 256), 256, 0, stream>>>(votes, votes_stride, kv_heads,
                                                                                    length, p, scores);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_kv_compact_votes(float* votes, int64_t votes_stride, int64_t kv_heads, const int32_t* kept, int64_t count,
                             int64_t length, float* tmp, cudaStream_t stream) {
  if (kv_heads * length == 0) return;
  if (count > 0) {
    kv_gather_votes_kernel<<<blocks_for(kv_heads * count, 256), 256, 0, stream>>>(votes, votes_stride, kv_heads, kept,
                                                                                  count, tmp);
    CTX_CUDA_CHECK_LAUNCH();
  }
  kv_write_votes_kernel<<<blocks_for(kv_heads * length, 256), 256, 0, stream>>>(votes, votes_stride, kv_heads, count,
                                                                                length, tmp);
  CTX_CUDA_CHECK_LAUNCH();
}

}  // namespace ctx::cuda
