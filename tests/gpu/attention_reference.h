// Float64 references for the GPU attention kernels' tests (gpu_attention_test): causal softmax
// attention over a GpuAttentionCase's float inputs (core/cuda/gpu_attention.h's conventions), and
// the check of a kernel's bf16 outputs against it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cuda/gpu_attention.h"

namespace ctx::cuda::attention_ref {

float round_bf16(float x);
// n values of a normal(0, scale) distribution, rounded to bf16.
std::vector<float> random_bf16(size_t n, uint32_t seed, float scale);

// Random bf16-rounded inputs of a case (sizes as gpu_attention takes them): K and V normal(0, 1),
// queries normal(0, 2), so that attention is peaked (a wrong softmax shows) but not one-hot.
struct Inputs {
  std::vector<float> q, k, v;
};
Inputs random_inputs(const GpuAttentionCase& c, uint32_t seed);

// The case's output in double: one sequence (queries at the last positions) or, with batch_lengths,
// each sequence's one query over its own rows; causal within the window, or the case's flex mask
// evaluated element by element; the case's score mod (if any) on the scaled scores. spread (when given): sum_j w_j |v_j| per element, the scale of the
// error of kernels that round the softmax weights to bf16 before multiplying by V (flash).
std::vector<double> reference_attention(const GpuAttentionCase& c, const std::vector<float>& q,
                                        const std::vector<float>& k, const std::vector<float>& v,
                                        std::vector<double>* spread = nullptr);

// The kernel rounds its output to bf16 (relative error <= 2^-9) after float32 accumulation:
// counts the elements with |got - want| > 2^-8 |want| + 1e-3 max|want| (+ 2^-9 spread when given:
// bf16 softmax weights); worst = max |got - want| / max|want|.
struct Deviation {
  size_t bad = 0;
  double worst = 0;
};
Deviation compare_to_reference(const std::vector<float>& got, const std::vector<double>& want,
                               const std::vector<double>* spread = nullptr);

}  // namespace ctx::cuda::attention_ref
