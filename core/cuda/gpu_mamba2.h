// The Mamba-2 mixer of hybrid models on the GPU (internal to core/cuda; the CPU reference is
// core/model/mamba2_layer.h). The engine runs in_proj and out_proj through its own GEMM (prefill)
// and GEMV (decode, RMSNorm fused into the input) into and out of a workspace; GpuMamba2Layer holds
// one layer's other weights and runs what lies between (kernels/mamba2_kernels.h): conv1d + SiLU,
// the scan (chunked SSD for prefill, the recurrent step for decode), D skip and the gated RMSNorm,
// advancing that layer's recurrent state in device memory (so decode steps can be graph-captured).
//
// State layout per Mamba-2 layer, as core/model/recurrent_state.h: conv [conv_dim][conv_kernel - 1]
// (oldest input first), then ssm [heads][head_dim][state_size], float32; all zeros = before the
// first token. GpuMamba2Mixer wraps one layer with its own state for tests on host tensors.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/cuda/device_allocator.h"
#include "core/cuda/kernels/mamba2_kernels.h"
#include "core/model/model_config.h"
#include "core/model/weights.h"

namespace ctx::cuda {

// Floats of one layer's state slot and of its conv part.
int64_t mamba2_state_floats(const Mamba2Config& c);
int64_t mamba2_conv_state_floats(const Mamba2Config& c);

// Scratch for up to max_tokens tokens per call, shared by every Mamba-2 layer of a model.
struct GpuMamba2Workspace {
  GpuMamba2Workspace() = default;
  GpuMamba2Workspace(DeviceAllocator& alloc, const Mamba2Config& c, int64_t max_tokens);
  int64_t max_tokens = 0;
  DeviceBuffer<float> proj;     // [max_tokens, in_proj_dim]: the in_proj output (the mixer's input)
  DeviceBuffer<float> xbc, y, chunk_states, chunk_sum;  // Mamba2Params' workspace
  DeviceBuffer<bf16> out;       // [max_tokens, intermediate]: the out_proj input (the mixer's output)
};

class GpuMamba2Layer {
 public:
  // Uploads conv weight/bias and the norm weight as bf16, dt_bias, A_log and D as float32. Throws
  // ctx::Unsupported for shapes the kernels cannot run (mamba2_unsupported_reason).
  GpuMamba2Layer(DeviceAllocator& alloc, const Mamba2Config& c, float norm_eps, const Mamba2Weights& w);

  int64_t weight_bytes() const { return weight_bytes_; }

  // ws.proj rows 0..n-1 (1 <= n <= ws.max_tokens: consecutive new tokens of one sequence) ->
  // ws.out rows 0..n-1; `state` (this layer's slot) advances past them. Launches only, on `stream`.
  void mix(GpuMamba2Workspace& ws, int64_t n, float* state, cudaStream_t stream) const;

 private:
  Mamba2Params params_;  // shape and weight pointers; state and workspace set per call
  DeviceBuffer<bf16> conv_w_, conv_b_, norm_w_;
  DeviceBuffer<float> dt_bias_, a_log_, d_;
  int64_t weight_bytes_ = 0;
};

// One layer on host tensors with its state kept on the device between calls (tests).
class GpuMamba2Mixer {
 public:
  // Throws ctx::Unsupported without a GPU or for shapes the kernels cannot run.
  GpuMamba2Mixer(const Mamba2Config& c, float norm_eps, const Mamba2Weights& w, int64_t max_tokens);
  ~GpuMamba2Mixer();
  // proj: [n, in_proj_dim] in_proj outputs of the next n tokens (n <= max_tokens); returns the
  // out_proj input [n, intermediate] (the kernel's bf16 values as float).
  std::vector<float> mix(std::span<const float> proj);
  std::vector<float> conv_state() const;  // [conv_dim][conv_kernel - 1]
  std::vector<float> ssm_state() const;   // [heads][head_dim][state_size]

 private:
  Mamba2Config config_;
  DeviceAllocator alloc_;  // before the buffers: destroyed after them
  std::unique_ptr<GpuMamba2Layer> layer_;
  GpuMamba2Workspace ws_;
  DeviceBuffer<float> state_;
};

}  // namespace ctx::cuda
