// Embedding, RMSNorm, q/k norm + RoPE + KV write, SwiGLU, argmax and the decode-step counter
// (kernels.h).
#include <cmath>

#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/pdl.cuh"
#include "core/cuda/kernels/strided_loads.cuh"

namespace ctx::cuda {

namespace {

__global__ void embedding_kernel(const bf16* __restrict__ table, const int32_t* __restrict__ tokens, int64_t dim,
                                 float multiplier, float* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const bf16* row = table + int64_t(tokens[t]) * dim;
  for (int64_t e = threadIdx.x; e < dim; e += blockDim.x) out[t * dim + e] = __bfloat162float(row[e]) * multiplier;
}

__global__ void rmsnorm_kernel(const float* __restrict__ x, const bf16* __restrict__ weight, int64_t dim, float eps,
                               bf16* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const float* row = x + t * dim;
  float ss = 0.f;
  for (int64_t e = threadIdx.x; e < dim; e += blockDim.x) ss += row[e] * row[e];
  const float inv = rsqrtf(block_sum(ss) / float(dim) + eps);
  for (int64_t e = threadIdx.x; e < dim; e += blockDim.x)
    out[t * dim + e] = __float2bfloat16(__bfloat162float(weight[e]) * round_bf16(row[e] * inv));
}

// grid (n, heads + kv_heads), block hd rounded up to whole warps: thread e < hd owns element e of one
// head of one token (the others only take part in the q/k-norm reduction).
__global__ void qkv_rope_kernel(QkvRopeParams p) {
  pdl_wait();
  pdl_trigger();
  extern __shared__ float head[];
  const int64_t t = blockIdx.x, h = blockIdx.y, e = threadIdx.x, hd = p.hd;
  const bool is_q = h < p.heads;
  const int64_t kvh = h - p.heads;
  const float* src = is_q ? p.q + t * p.ld + h * hd : p.k + t * p.ld + kvh * hd;
  const bf16* norm = is_q ? p.q_norm : p.k_norm;
  // Batched decode: row t is sequence t's token at position seq_lens[t] - 1; else one sequence.
  const int64_t seq = p.seq_lens ? t : 0;
  const int64_t pos = p.seq_lens ? int64_t(p.seq_lens[t]) - 1 : int64_t(*p.pos0) + t;
  float v = e < hd ? round_bf16(src[e]) : 0.f;  // the projection's bf16 output
  if (norm) {
    const float inv = rsqrtf(block_sum(v * v) / float(hd) + p.norm_eps);
    if (e < hd) v = round_bf16(__bfloat162float(norm[e]) * round_bf16(v * inv));
  }
  head[e] = v;
  __syncthreads();
  if (e >= hd) return;
  const RopePair pair = rope_pair(e, hd, p.interleaved);
  const float rotated = rope_rotate(head[e], head[pair.partner], pair, pos, p.inv_freq);
  if (is_q) {
    p.q_out[(t * p.heads + h) * hd + e] = __float2bfloat16(rotated);
  } else {
    // The cache entry: the position, unless a compressed cache counts its entries apart (cache0).
    const int64_t entry = p.cache0 ? int64_t(*p.cache0) + t : pos;
    const int64_t row = p.ring > 0 ? entry % p.ring : entry;  // KIVI's ring: the entry at row entry % ring
    const int64_t slot =
        p.pool.paged() ? p.pool.offset(seq, kvh, row, hd) + e
                      : ((seq * p.kv_heads + kvh) * (p.ring > 0 ? p.ring : p.capacity) + row) * hd + e;
    p.k_cache[slot] = __float2bfloat16(rotated);
    p.v_cache[slot] = __float2bfloat16(p.v[t * p.ld + kvh * hd + e]);
  }
}

__global__ void swiglu_kernel(const float* __restrict__ gate_up, const bf16* __restrict__ bias, int64_t n, int64_t ff,
                              bf16* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * ff) return;
  const int64_t t = i / ff, r = i % ff;
  const float* row = gate_up + t * 2 * ff;
  out[i] = swiglu(row[r] + (bias ? __bfloat162float(bias[r]) : 0.f), row[ff + r] + (bias ? __bfloat162float(bias[ff + r]) : 0.f));
}

// (bv, bi) = the larger of (bv, bi) and (v, i): the larger value, on a tie the smaller index. A total
// order over the candidates (NaN is never taken), so any order of reduction gives the same winner.
__device__ __forceinline__ void argmax_take(float v, int32_t i, float& bv, int32_t& bi) {
  if (v > bv || (v == bv && i < bi)) bv = v, bi = i;
}

// One block per row r of logits [rows, vocab]: each thread scans its elements (16-byte loads, 4 in
// flight, when the row allows), then the warps and the block reduce with shuffles.
__global__ void argmax_kernel(const float* __restrict__ logits, int64_t vocab, int32_t* token, int32_t* log,
                              const int32_t* step) {
  pdl_wait();
  pdl_trigger();
  const int64_t r = blockIdx.x, rows = gridDim.x;
  logits += r * vocab;
  float bv = -INFINITY;
  int32_t bi = INT32_MAX;
  if (vocab % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0) {
    for_each_strided_x4(reinterpret_cast<const float4*>(logits), vocab / 4, [&](int64_t i4, const float4& v) {
      const int32_t i = int32_t(4 * i4);
      argmax_take(v.x, i, bv, bi), argmax_take(v.y, i + 1, bv, bi);
      argmax_take(v.z, i + 2, bv, bi), argmax_take(v.w, i + 3, bv, bi);
    });
  } else {
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) argmax_take(logits[i], int32_t(i), bv, bi);
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = (blockDim.x + 31) / 32;
  const auto warp_reduce = [&] {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      argmax_take(__shfl_xor_sync(0xffffffffu, bv, o), __shfl_xor_sync(0xffffffffu, bi, o), bv, bi);
  };
  warp_reduce();
  __shared__ float warp_v[32];
  __shared__ int32_t warp_i[32];
  if (lane == 0) warp_v[warp] = bv, warp_i[warp] = bi;
  __syncthreads();
  if (warp == 0) {
    bv = lane < warps ? warp_v[lane] : -INFINITY;
    bi = lane < warps ? warp_i[lane] : INT32_MAX;
    warp_reduce();
    if (lane == 0) {
      token[r] = bi;
      if (log) log[int64_t(*step) * rows + r] = bi;
    }
  }
}

__global__ void fill_random_kernel(bf16* p, int64_t count, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = seed + uint64_t(i) * 0x9e3779b97f4a7c15ull;  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    p[i] = __float2bfloat16(float(z >> 40) * (2.f / 16777216.f) - 1.f);
  }
}

__global__ void advance_kernel(int32_t* pos, int32_t pos_delta, int32_t* step, int32_t* lengths, int64_t count) {
  pdl_wait();
  pdl_trigger();
  *pos += pos_delta;
  *step += 1;
  for (int64_t i = 0; i < count; ++i) lengths[i] += pos_delta;
}

__global__ void advance_lengths_kernel(int32_t* lengths, int64_t rows, int32_t* step) {
  pdl_wait();
  pdl_trigger();
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) lengths[r] += 1;
  if (threadIdx.x == 0) *step += 1;
}

}  // namespace

void launch_embedding(const bf16* table, const int32_t* tokens, int64_t n, int64_t dim, float multiplier, float* out,
                      cudaStream_t stream) {
  launch_pdl(embedding_kernel, dim3(unsigned(n)), dim3(256), 0, stream, table, tokens, dim, multiplier, out);
}

void launch_rmsnorm(const float* x, const bf16* weight, int64_t n, int64_t dim, float eps, bf16* out,
                    cudaStream_t stream) {
  launch_pdl(rmsnorm_kernel, dim3(unsigned(n)), dim3(dim >= 2048 ? 1024 : 256), 0, stream, x, weight, dim, eps, out);
}

void launch_qkv_rope(const QkvRopeParams& p, cudaStream_t stream) {
  CTX_CHECK(p.hd % 2 == 0 && p.hd <= 1024, "head_dim ", p.hd);
  const dim3 grid(unsigned(p.n), unsigned(p.heads + p.kv_heads));
  const unsigned threads = unsigned((p.hd + 31) / 32 * 32);
  launch_pdl(qkv_rope_kernel, grid, dim3(threads), threads * sizeof(float), stream, p);
}

void launch_swiglu(const float* gate_up, const bf16* bias, int64_t n, int64_t ff, bf16* out, cudaStream_t stream) {
  launch_pdl(swiglu_kernel, dim3(unsigned((n * ff + 255) / 256)), dim3(256), 0, stream, gate_up, bias, n, ff, out);
}

void launch_argmax(const float* logits, int64_t vocab, int32_t* token, int32_t* log, const int32_t* step,
                   cudaStream_t stream) {
  launch_argmax_rows(logits, 1, vocab, token, log, step, stream);
}

void launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* tokens, int32_t* log,
                        const int32_t* step, cudaStream_t stream) {
  launch_pdl(argmax_kernel, dim3(unsigned(rows)), dim3(1024), 0, stream, logits, vocab, tokens, log, step);
}

void launch_advance_lengths(int32_t* lengths, int64_t rows, int32_t* step, cudaStream_t stream) {
  launch_pdl(advance_lengths_kernel, dim3(1), dim3(256), 0, stream, lengths, rows, step);
}

void launch_fill_random(bf16* p, int64_t count, uint64_t seed, cudaStream_t stream) {
  fill_random_kernel<<<1024, 256, 0, stream>>>(p, count, seed);
  CTX_CUDA_CHECK_LAUNCH();
}

void launch_advance(int32_t* pos, int32_t pos_delta, int32_t* step, cudaStream_t stream, int32_t* lengths,
                    int64_t count) {
  launch_pdl(advance_kernel, dim3(1), dim3(1), 0, stream, pos, pos_delta, step, lengths, lengths ? count : int64_t(0));
}

}  // namespace ctx::cuda
