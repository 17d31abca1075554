// The Mamba-2 mixer's kernels (mamba2_kernels.h). Prefill of n tokens:
//   conv        grid (conv_dim / 128, n / 64): thread = one channel over 64 tokens (coalesced over
//               channels); the conv state is advanced by the same thread when one tile covers the
//               tokens, else by a second small kernel (the first tile still reads the old state)
//   chunk state grid (chunks, heads, state elements / 2048): each chunk's final state from a zero
//               start, sum_s exp(cum_end - cum_s) dt_s x_s B_s^T (a [P x Q] x [Q x N] product)
//   state pass  grid (state elements / 256, heads): the states entering every chunk, sequentially
//               over chunks (S_c+1 = exp(sum_c) S_c + local_c), and the final state
//   chunk out   grid (chunks, heads, chunk / 16): 16 query rows of one chunk and head: the decayed
//               entering state exp(cum_t) C_t S_c, the masked intra-chunk product
//               sum_{s<=t} exp(cum_t - cum_s) (C_t . B_s) dt_s x_s, and D x_t
//   gated norm  grid n: y * silu(z), RMSNorm over the whole intermediate width, bf16 output.
// cum is the inclusive cumulative sum of dt * A within a chunk; every decay is the exp of a
// difference cum_t - cum_s <= 0 (never a ratio of exponentials, which would overflow/underflow).
// Decode (n = 1): conv, then one recurrent step per (head, row of the state), then the gated norm.
#include <algorithm>
#include <cmath>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/device_math.cuh"
#include "core/cuda/kernels/mamba2_kernels.h"
#include "core/cuda/kernels/pdl.cuh"

namespace ctx::cuda {

namespace {

constexpr int kMaxConv = 8;        // conv_kernel limit (weights held in registers)
constexpr int kConvThreads = 128;  // channels per block
constexpr int kConvTokens = 64;    // tokens per conv thread
constexpr int kScanThreads = 256;  // every scan kernel's block
constexpr int kStatePer = 8;       // state elements per thread in the chunk-state kernel
constexpr int kKeyTile = 16;       // tokens staged per step (keys s)
constexpr int kQueryTile = 16;     // query rows per chunk-output block
constexpr int kOutPer = 8;         // outputs per thread in the chunk-output kernel: 16 * head_dim <= 256 * 8
constexpr int kStateTile = 32;     // state columns staged per step for the entering-state term
constexpr int kStepRows = kScanThreads / 32;  // state rows per decode-step block (one per warp)

__device__ inline float silu_f(float v) { return v / (1.f + expf(-v)); }

// torch softplus with its default threshold, as the CPU mixer.
__device__ inline float softplus_f(float v) { return v > 20.f ? v : log1pf(expf(v)); }

// clamp(softplus(dt_raw + dt_bias), time_step_limit) of token t, head h.
__device__ inline float step_size(const Mamba2Params& p, int64_t t, int64_t h) {
  const float raw = p.proj[t * p.in_dim() + p.inner() + p.conv_dim() + h];
  return fminf(fmaxf(softplus_f(raw + p.dt_bias[h]), p.dt_min), p.dt_max);
}

__device__ inline int64_t group_of(const Mamba2Params& p, int64_t h) { return h / (p.heads / p.groups); }

// Whole block (blockDim.x >= 32): dt[i] and cum[i] = sum_{j <= i} dt_j A_h for the chunk's tokens
// c0 .. c0 + len - 1, in shared memory. Warp 0 scans: each lane a contiguous run, then the runs'
// totals across lanes.
__device__ void chunk_decays(const Mamba2Params& p, int64_t c0, int len, int64_t h, float* dt, float* cum) {
  const float a = -expf(p.a_log[h]);
  for (int i = threadIdx.x; i < len; i += blockDim.x) {
    const float v = step_size(p, c0 + i, h);
    dt[i] = v, cum[i] = v * a;
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x, per = (len + 31) / 32;
    const int b = min(len, lane * per), e = min(len, b + per);
    float run = 0.f;
    for (int i = b; i < e; ++i) cum[i] = (run += cum[i]);
    float incl = run;
    for (int o = 1; o < 32; o <<= 1) {
      const float u = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += u;
    }
    float before = __shfl_up_sync(0xffffffffu, incl, 1);
    if (lane == 0) before = 0.f;
    for (int i = b; i < e; ++i) cum[i] += before;
  }
  __syncthreads();
}

// Channel ch's conv state after n new tokens: their last conv_kernel - 1 inputs, oldest first (from
// the old state when n is shorter). Ascending j reads only entries at or after the one written.
__device__ inline void conv_state_update(const Mamba2Params& p, int64_t n, int64_t ch) {
  const int64_t hist = p.conv_kernel - 1, ld = p.in_dim();
  const float* in = p.proj + p.inner() + ch;
  float* state = p.conv_state + ch * hist;
  for (int64_t j = 0; j < hist; ++j) {
    const int64_t src = n - hist + j;
    state[j] = src >= 0 ? in[src * ld] : state[hist + src];
  }
}

__global__ void __launch_bounds__(kConvThreads) mamba2_conv_kernel(Mamba2Params p, int64_t n) {
  pdl_wait();
  pdl_trigger();
  const int64_t ch = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, conv_dim = p.conv_dim();
  if (ch >= conv_dim) return;
  const int64_t k = p.conv_kernel, hist = k - 1, ld = p.in_dim();
  const float* in = p.proj + p.inner() + ch;  // input of token t: in[t * ld]
  const float* state = p.conv_state + ch * hist;
  float w[kMaxConv];
#pragma unroll
  for (int j = 0; j < kMaxConv; ++j) w[j] = j < k ? __bfloat162float(p.conv_w[ch * k + j]) : 0.f;
  const float bias = p.conv_b ? __bfloat162float(p.conv_b[ch]) : 0.f;
  const int64_t t0 = int64_t(blockIdx.y) * kConvTokens, t1 = min(n, t0 + kConvTokens);
  for (int64_t t = t0; t < t1; ++t) {
    float acc = bias;
#pragma unroll
    for (int j = 0; j < kMaxConv; ++j) {
      if (j < k) {
        const int64_t pos = t - hist + j;  // < 0: from the state
        acc += w[j] * (pos >= 0 ? in[pos * ld] : state[hist + pos]);
      }
    }
    p.xbc[t * conv_dim + ch] = silu_f(acc);
  }
  if (gridDim.y == 1) conv_state_update(p, n, ch);  // this thread alone read the old state
}

__global__ void __launch_bounds__(kConvThreads) mamba2_conv_state_kernel(Mamba2Params p, int64_t n) {
  pdl_wait();
  pdl_trigger();
  const int64_t ch = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (ch < p.conv_dim()) conv_state_update(p, n, ch);
}

// Shared floats of the two chunk kernels.
int64_t chunk_state_smem_floats(const Mamba2Params& p) {
  return 2 * p.chunk + kKeyTile * (p.head_dim + p.state);
}
int64_t chunk_output_smem_floats(const Mamba2Params& p) {
  const int64_t np = p.state + 1;
  const int64_t state_term = p.head_dim * (kStateTile + 1);
  const int64_t intra = kKeyTile * np + kKeyTile * p.head_dim + kQueryTile * (kKeyTile + 1);
  return 2 * p.chunk + kQueryTile * np + std::max(state_term, intra);
}

__global__ void __launch_bounds__(kScanThreads) mamba2_chunk_state_kernel(Mamba2Params p, int64_t n) {
  extern __shared__ float smem[];
  pdl_wait();
  pdl_trigger();
  const int64_t c = blockIdx.x, h = blockIdx.y, hd = p.head_dim, ns = p.state, pn = hd * ns;
  const int64_t c0 = c * p.chunk, conv_dim = p.conv_dim();
  const int len = int(min(p.chunk, n - c0));
  const float* x0 = p.xbc + c0 * conv_dim + h * hd;                                  // x of token c0 + s: x0[s * conv_dim]
  const float* b0 = p.xbc + c0 * conv_dim + p.inner() + group_of(p, h) * ns;         // B likewise
  float* coef = smem;                 // [chunk]: dt, then exp(cum_end - cum_s) dt_s
  float* cum = coef + p.chunk;        // [chunk]
  float* xs = cum + p.chunk;          // [kKeyTile][hd]: coef_s x_s
  float* bs = xs + kKeyTile * hd;     // [kKeyTile][ns]
  chunk_decays(p, c0, len, h, coef, cum);
  const float total = cum[len - 1];
  for (int i = threadIdx.x; i < len; i += blockDim.x) coef[i] = expf(total - cum[i]) * coef[i];
  if (blockIdx.z == 0 && threadIdx.x == 0) p.chunk_sum[c * p.heads + h] = total;
  float acc[kStatePer];
#pragma unroll
  for (int k = 0; k < kStatePer; ++k) acc[k] = 0.f;
  const int64_t e0 = int64_t(blockIdx.z) * kScanThreads * kStatePer + threadIdx.x;
  for (int s0 = 0; s0 < len; s0 += kKeyTile) {
    __syncthreads();  // coef written; the previous tile no longer read
    for (int i = threadIdx.x; i < kKeyTile * hd; i += blockDim.x) {
      const int s = s0 + i / int(hd);
      xs[i] = s < len ? coef[s] * x0[s * conv_dim + i % hd] : 0.f;
    }
    for (int i = threadIdx.x; i < kKeyTile * ns; i += blockDim.x) {
      const int s = s0 + i / int(ns);
      bs[i] = s < len ? b0[s * conv_dim + i % ns] : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kStatePer; ++k) {
      const int64_t e = e0 + k * kScanThreads;
      if (e < pn) {
        const int64_t row = e / ns, col = e % ns;
        float a = acc[k];
        for (int s = 0; s < kKeyTile; ++s) a = fmaf(xs[s * hd + row], bs[s * ns + col], a);
        acc[k] = a;
      }
    }
  }
  float* out = p.chunk_states + (c * p.heads + h) * pn;
#pragma unroll
  for (int k = 0; k < kStatePer; ++k) {
    const int64_t e = e0 + k * kScanThreads;
    if (e < pn) out[e] = acc[k];
  }
}

// chunk_states[c] (local final states) become the states entering chunk c; ssm_state the final one.
__global__ void __launch_bounds__(kScanThreads) mamba2_state_pass_kernel(Mamba2Params p, int64_t n) {
  pdl_wait();
  pdl_trigger();
  const int64_t h = blockIdx.y, pn = p.head_dim * p.state, e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= pn) return;
  float* state = p.ssm_state + h * pn + e;
  float s = *state;
  const int64_t chunks = p.chunks(n);
  for (int64_t c = 0; c < chunks; ++c) {
    float* slot = p.chunk_states + (c * p.heads + h) * pn + e;
    const float local = *slot;
    *slot = s;
    s = expf(p.chunk_sum[c * p.heads + h]) * s + local;
  }
  *state = s;
}

// The chunk-output kernel's thread owns outputs (row t, column q) = (e / hd, e % hd) for
// e = tid + k * kScanThreads, k < kOutPer; rows t < `rows` are real. For each:
// acc[k] += sum_{j < cols} a[t * lda + j] * b[q * bq + j * bj] (shared-memory operands).
__device__ inline void accumulate_outputs(float (&acc)[kOutPer], int rows, int hd, const float* a, int lda, int cols,
                                          const float* b, int bq, int bj) {
#pragma unroll
  for (int k = 0; k < kOutPer; ++k) {
    const int e = int(threadIdx.x) + k * kScanThreads, t = e / hd, q = e % hd;
    if (t < rows) {
      float sum = acc[k];
      for (int j = 0; j < cols; ++j) sum = fmaf(a[t * lda + j], b[q * bq + j * bj], sum);
      acc[k] = sum;
    }
  }
}

__global__ void __launch_bounds__(kScanThreads) mamba2_chunk_output_kernel(Mamba2Params p, int64_t n) {
  extern __shared__ float smem[];
  pdl_wait();
  pdl_trigger();
  const int64_t c = blockIdx.x, h = blockIdx.y, hd = p.head_dim, ns = p.state, np = ns + 1;
  const int64_t c0 = c * p.chunk, conv_dim = p.conv_dim(), inner = p.inner(), g = group_of(p, h);
  const int len = int(min(p.chunk, n - c0)), q0 = int(blockIdx.z) * kQueryTile;
  if (q0 >= len) return;  // the whole block, before any barrier
  const int rows = min(kQueryTile, len - q0), s_end = q0 + rows;
  const float* tok0 = p.xbc + c0 * conv_dim;  // xbc row of chunk token s: tok0 + s * conv_dim
  const float* x_at = tok0 + h * hd;
  const float* b_at = tok0 + inner + g * ns;
  const float* c_at = tok0 + inner + p.groups * ns + g * ns;
  float* dt = smem;                  // [chunk]
  float* cum = dt + p.chunk;         // [chunk]
  float* cs = cum + p.chunk;         // [kQueryTile][np]: C of the tile's rows
  float* work = cs + kQueryTile * np;
  chunk_decays(p, c0, len, h, dt, cum);
  for (int i = threadIdx.x; i < kQueryTile * ns; i += blockDim.x) {
    const int t = i / int(ns), col = i % int(ns);
    cs[t * np + col] = t < rows ? c_at[(q0 + t) * conv_dim + col] : 0.f;
  }
  // This thread's outputs: see accumulate_outputs.
  float acc[kOutPer];
#pragma unroll
  for (int k = 0; k < kOutPer; ++k) acc[k] = 0.f;

  // The entering state: exp(cum_t) sum_n C_t[n] S[q][n], S staged kStateTile columns at a time.
  const float* s_in = p.chunk_states + (c * p.heads + h) * hd * ns;
  float* st = work;  // [hd][kStateTile + 1]
  for (int n0 = 0; n0 < ns; n0 += kStateTile) {
    const int cols = min(kStateTile, int(ns) - n0);
    __syncthreads();  // cs written; the previous columns no longer read
    for (int i = threadIdx.x; i < hd * kStateTile; i += blockDim.x) {
      const int q = i / kStateTile, k = i % kStateTile;
      st[q * (kStateTile + 1) + k] = k < cols ? s_in[q * ns + n0 + k] : 0.f;
    }
    __syncthreads();
    accumulate_outputs(acc, rows, int(hd), cs + n0, int(np), cols, st, kStateTile + 1, 1);
  }
#pragma unroll
  for (int k = 0; k < kOutPer; ++k) {
    const int t = (int(threadIdx.x) + k * kScanThreads) / int(hd);
    if (t < rows) acc[k] *= expf(cum[q0 + t]);
  }

  // Within the chunk: keys s <= t, kKeyTile at a time: M[t][s] = exp(cum_t - cum_s) (C_t . B_s) dt_s,
  // then y[t] += M[t][s] x_s.
  float* bs = work;                  // [kKeyTile][np]
  float* xs = bs + kKeyTile * np;    // [kKeyTile][hd]
  float* ms = xs + kKeyTile * hd;    // [kQueryTile][kKeyTile + 1]
  for (int s0 = 0; s0 < s_end; s0 += kKeyTile) {
    __syncthreads();  // st / the previous tile no longer read
    for (int i = threadIdx.x; i < kKeyTile * ns; i += blockDim.x) {
      const int sl = i / int(ns), col = i % int(ns);
      bs[sl * np + col] = s0 + sl < s_end ? b_at[(s0 + sl) * conv_dim + col] : 0.f;
    }
    for (int i = threadIdx.x; i < kKeyTile * hd; i += blockDim.x) {
      const int sl = i / int(hd), q = i % int(hd);
      xs[i] = s0 + sl < s_end ? x_at[(s0 + sl) * conv_dim + q] : 0.f;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kQueryTile * kKeyTile; i += blockDim.x) {
      const int t = i / kKeyTile, sl = i % kKeyTile, tq = q0 + t, s = s0 + sl;
      float m = 0.f;
      if (t < rows && s <= tq) {
        float dot = 0.f;
        for (int j = 0; j < ns; ++j) dot = fmaf(cs[t * np + j], bs[sl * np + j], dot);
        m = expf(cum[tq] - cum[s]) * dot * dt[s];
      }
      ms[t * (kKeyTile + 1) + sl] = m;
    }
    __syncthreads();
    accumulate_outputs(acc, rows, int(hd), ms, kKeyTile + 1, kKeyTile, xs, 1, int(hd));
  }
  const float dh = p.d[h];
#pragma unroll
  for (int k = 0; k < kOutPer; ++k) {
    const int e = int(threadIdx.x) + k * kScanThreads, t = e / int(hd), q = e % int(hd);
    if (t < rows) {
      const int64_t tok = c0 + q0 + t;
      p.y[tok * inner + h * hd + q] = acc[k] + dh * x_at[(q0 + t) * conv_dim + q];
    }
  }
}

// One token: warp w of block (h, r) advances row q = r * kStepRows + w of head h's state and emits
// y[h, q] = S[q] . C + D x[q].
__global__ void __launch_bounds__(kScanThreads) mamba2_step_kernel(Mamba2Params p) {
  pdl_wait();
  pdl_trigger();
  const int64_t h = blockIdx.x, q = int64_t(blockIdx.y) * kStepRows + threadIdx.x / 32, hd = p.head_dim, ns = p.state;
  const int lane = threadIdx.x % 32;
  if (q >= hd) return;
  const int64_t g = group_of(p, h), inner = p.inner();
  const float dt = step_size(p, 0, h), decay = expf(dt * -expf(p.a_log[h]));
  const float x = p.xbc[h * hd + q];
  const float* b = p.xbc + inner + g * ns;
  const float* cm = p.xbc + inner + p.groups * ns + g * ns;
  float* s = p.ssm_state + (h * hd + q) * ns;
  float acc = 0.f;
  for (int64_t i = lane; i < ns; i += 32) {
    const float v = s[i] * decay + (dt * b[i]) * x;
    s[i] = v;
    acc = fmaf(v, cm[i], acc);
  }
  acc = warp_sum(acc);
  if (lane == 0) p.y[h * hd + q] = acc + p.d[h] * x;
}

// out[t] = bf16(norm_w * bf16(v / rms(v))) with v = y[t] * silu(z[t]) over the intermediate width
// (HF GraniteMoeHybridRMSNormGated); v is kept in y between the two passes.
__global__ void mamba2_gated_norm_kernel(Mamba2Params p) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x, inner = p.inner();
  float* y = p.y + t * inner;
  const float* z = p.proj + t * p.in_dim();
  float ss = 0.f;
  for (int64_t e = threadIdx.x; e < inner; e += blockDim.x) {
    const float v = y[e] * silu_f(z[e]);
    y[e] = v;
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / float(inner) + p.eps);
  for (int64_t e = threadIdx.x; e < inner; e += blockDim.x)
    p.out[t * inner + e] = __float2bfloat16(__bfloat162float(p.norm_w[e]) * round_bf16(y[e] * inv));
}

}  // namespace

std::string mamba2_unsupported_reason(const Mamba2Params& p) {
  if (p.heads < 1 || p.head_dim < 1 || p.state < 1 || p.groups < 1 || p.chunk < 1 || p.heads % p.groups != 0)
    return str_cat("Mamba-2 shape heads ", p.heads, ", head_dim ", p.head_dim, ", state ", p.state, ", groups ", p.groups,
                   ", chunk ", p.chunk, " is invalid");
  if (p.head_dim > 128) return str_cat("Mamba-2 head_dim ", p.head_dim, " > 128");
  if (p.conv_kernel < 1 || p.conv_kernel > kMaxConv)
    return str_cat("Mamba-2 conv_kernel ", p.conv_kernel, " outside 1..", kMaxConv);
  int dev = 0, limit = 0;
  CTX_CUDA_CHECK(cudaGetDevice(&dev));
  CTX_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const int64_t need = 4 * std::max(chunk_state_smem_floats(p), chunk_output_smem_floats(p));
  if (need > limit)
    return str_cat("Mamba-2 chunk ", p.chunk, " with state ", p.state, " and head_dim ", p.head_dim, " needs ", need,
                   " bytes of shared memory per block, the device allows ", limit);
  return {};
}

void launch_mamba2_mixer(const Mamba2Params& p, int64_t n, cudaStream_t stream) {
  CTX_CHECK(n >= 1 && p.conv_kernel >= 1 && p.conv_kernel <= kMaxConv && p.head_dim <= 128, "Mamba-2 launch: n ", n);
  const unsigned conv_blocks = unsigned((p.conv_dim() + kConvThreads - 1) / kConvThreads);
  const unsigned token_tiles = unsigned((n + kConvTokens - 1) / kConvTokens);
  launch_pdl(mamba2_conv_kernel, dim3(conv_blocks, token_tiles), dim3(kConvThreads), 0, stream, p, n);
  if (token_tiles > 1) launch_pdl(mamba2_conv_state_kernel, dim3(conv_blocks), dim3(kConvThreads), 0, stream, p, n);
  if (n == 1) {
    launch_pdl(mamba2_step_kernel, dim3(unsigned(p.heads), unsigned((p.head_dim + kStepRows - 1) / kStepRows)),
               dim3(kScanThreads), 0, stream, p);
  } else {
    const int64_t pn = p.head_dim * p.state, chunks = p.chunks(n);
    const int64_t state_smem = 4 * chunk_state_smem_floats(p), out_smem = 4 * chunk_output_smem_floats(p);
    const int64_t per_block = int64_t(kScanThreads) * kStatePer;
    launch_pdl(mamba2_chunk_state_kernel, dim3(unsigned(chunks), unsigned(p.heads), unsigned((pn + per_block - 1) / per_block)),
               dim3(kScanThreads), size_t(state_smem), stream, p, n);
    launch_pdl(mamba2_state_pass_kernel, dim3(unsigned((pn + kScanThreads - 1) / kScanThreads), unsigned(p.heads)),
               dim3(kScanThreads), 0, stream, p, n);
    const int64_t tiles = (std::min(p.chunk, n) + kQueryTile - 1) / kQueryTile;
    launch_pdl(mamba2_chunk_output_kernel, dim3(unsigned(chunks), unsigned(p.heads), unsigned(tiles)),
               dim3(kScanThreads), size_t(out_smem), stream, p, n);
  }
  launch_pdl(mamba2_gated_norm_kernel, dim3(unsigned(n)), dim3(p.inner() >= 2048 ? 1024 : 256), 0, stream, p);
}

}  // namespace ctx::cuda
