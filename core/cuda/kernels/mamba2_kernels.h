// Device kernels of the Mamba-2 mixer (core/cuda/gpu_mamba2.h; the CPU reference is
// core/model/mamba2_layer.h), internal to core/cuda. They run between in_proj and out_proj: from the
// in_proj output [z | xBC | dt] of n consecutive tokens of one sequence to the gated-normed scan
// output that out_proj reads, advancing the sequence's conv and SSM state in place. Float32 state,
// activations and accumulation; bf16 conv and norm weights; float32 dt_bias, A_log and D.
// Launched with programmatic dependent launch (pdl.cuh) and graph-capturable (no host sync).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

struct Mamba2Params {
  // Shape (Mamba2Config): inner = heads * head_dim, conv_dim = inner + 2 * groups * state,
  // in_dim = inner + conv_dim + heads.
  int64_t heads = 0, head_dim = 0, state = 0, groups = 1, conv_kernel = 4, chunk = 256;
  float dt_min = 0.f, dt_max = 0.f;  // time_step_limit (dt_max may be +inf)
  float eps = 1e-5f;                 // the gated RMSNorm's epsilon
  const bf16* conv_w = nullptr;      // [conv_dim][conv_kernel]
  const bf16* conv_b = nullptr;      // [conv_dim] or null
  const float *dt_bias = nullptr, *a_log = nullptr, *d = nullptr;  // [heads]
  const bf16* norm_w = nullptr;      // [inner]
  float* conv_state = nullptr;       // [conv_dim][conv_kernel - 1], oldest input first
  float* ssm_state = nullptr;        // [heads][head_dim][state]
  const float* proj = nullptr;       // [n, in_dim]: the in_proj output (bias included)
  // Workspace for n tokens (mamba2_workspace_floats()):
  float* xbc = nullptr;              // [n, conv_dim]: silu(conv(xBC))
  float* y = nullptr;                // [n, inner]: the scan output (+ D x)
  float* chunk_states = nullptr;     // [chunks(n)][heads][head_dim][state]
  float* chunk_sum = nullptr;        // [chunks(n)][heads]: sum of dt * A over the chunk
  bf16* out = nullptr;               // [n, inner]: bf16(norm_w * bf16(rmsnorm(y * silu(z))))

  __host__ __device__ int64_t inner() const { return heads * head_dim; }
  __host__ __device__ int64_t conv_dim() const { return inner() + 2 * groups * state; }
  __host__ __device__ int64_t in_dim() const { return inner() + conv_dim() + heads; }
  __host__ __device__ int64_t chunks(int64_t n) const { return (n + chunk - 1) / chunk; }
};

// Why these shapes cannot run on the current device (empty when they can): the kernels need
// head_dim <= 128, 1 <= conv_kernel <= 8, heads divisible by groups, and the scan kernels' shared
// memory (which grows with chunk, state and head_dim) within the device's per-block limit.
std::string mamba2_unsupported_reason(const Mamba2Params& p);

// The mixer for n >= 1 new tokens: causal conv1d + SiLU (continuing from conv_state), the scan
// (n == 1: the recurrent step; otherwise the chunked SSD form, parallel over chunks and heads, with
// chunks of p.chunk tokens from the first new token, as the CPU kChunked scan), D skip, gated
// RMSNorm into p.out. conv_state and ssm_state become the state after the last token.
void launch_mamba2_mixer(const Mamba2Params& p, int64_t n, cudaStream_t stream);

}  // namespace ctx::cuda
