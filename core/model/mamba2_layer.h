// The Mamba-2 mixer of hybrid models (Granite-4.0-H, HF GraniteMoeHybridMambaLayer) on CPU in
// float32. For each token of a sequence:
//   [z | xBC | dt] = in_proj(h)
//   xBC  = silu(causal depthwise conv1d over the sequence's xBC, kernel conv_kernel, + bias)
//   x | B | C = xBC   (x: heads x head_dim; B, C: groups x state_size, shared by heads/groups heads)
//   dt   = clamp(softplus(dt + dt_bias), time_step_limit);  A = -exp(A_log)
//   S_h  = exp(dt_h A_h) S_h + dt_h x_h B_g^T        (S_h: [head_dim, state_size])
//   y_h  = S_h C_g + D_h x_h
//   out  = out_proj(rmsnorm(y * silu(z)) * norm)    (the norm spans all heads, as HF's gated norm)
// The conv inputs before a sequence's first new token and S come from its RecurrentState, which is
// updated to the state after its last token; so a prompt split into chunks, or fed token by token,
// gives the same outputs as one prefill.
//
// Two exact evaluations of the recurrence: kSequential steps token by token; kChunked is the SSD
// form (HF torch_forward): within chunks of chunk_size tokens the output is a masked
// attention-like product with decays exp(sum dt A), and states pass between chunks. They agree to
// float32 rounding. Not thread-safe (scratch buffers); one mixer serves every Mamba-2 layer of a
// model (the weights are arguments).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/model/model_config.h"
#include "core/model/weights.h"

namespace ctx {

// Rows [row_begin, row_begin + rows) of a batch: consecutive new tokens of one sequence, whose
// state slots (RecurrentState::conv/ssm of this layer) are read and advanced.
struct Mamba2Sequence {
  int64_t row_begin = 0, rows = 0;
  float* conv_state = nullptr;  // [conv_dim][conv_kernel - 1]
  float* ssm_state = nullptr;   // [num_heads][head_dim][state_size]
};

enum class Mamba2Scan { kSequential, kChunked };

class Mamba2Mixer {
 public:
  Mamba2Mixer(const Mamba2Config& config, float norm_eps, Mamba2Scan scan = Mamba2Scan::kChunked);

  // x: [n, hidden] (the layer's normalized input), out: [n, hidden]; may not alias x. Every row
  // belongs to exactly one of `seqs`.
  void forward(const Mamba2Weights& w, const float* x, int64_t n, std::span<const Mamba2Sequence> seqs, float* out);

 private:
  void convolve(const Mamba2Weights& w, const Mamba2Sequence& s);
  void scan_sequential(const Mamba2Weights& w, const Mamba2Sequence& s);
  void scan_chunked(const Mamba2Weights& w, const Mamba2Sequence& s);
  float step_size(const Mamba2Weights& w, int64_t row, int64_t head) const;  // clamped softplus

  Mamba2Config c_;
  float eps_;
  Mamba2Scan scan_;
  // Scratch for n rows: projections, conv outputs, scan outputs.
  std::vector<float> proj_, xbc_, y_;
};

}  // namespace ctx
