// Helpers shared by the model tests: reading reference tensors and comparing logits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/io/safetensors.h"

namespace ctx::test {

// An int64 or int32 tensor as int32 values (token ids). Fails the test if absent.
std::vector<int32_t> ids_tensor(const SafetensorsIndex& index, const std::string& name, std::vector<int64_t>* shape);
// A float32 tensor's values. Fails the test if absent.
std::vector<float> f32_tensor(const SafetensorsIndex& index, const std::string& name, std::vector<int64_t>* shape);

// reference.safetensors of an HF fixture folder (transformers' outputs): input_ids [batch, T],
// logits [batch, T, vocab], generated [batch, T + new tokens]. Fails the test if a tensor is absent.
struct HfReference {
  int64_t batch = 0, prompt_len = 0, vocab = 0, generated_len = 0;
  std::vector<int32_t> input_ids, generated;
  std::vector<float> logits;
  // Prompt b's input ids (b < batch).
  std::span<const int32_t> prompt(int64_t b) const {
    return {input_ids.data() + b * prompt_len, size_t(prompt_len)};
  }
};
HfReference load_hf_reference(const std::string& dir);

struct LogitDiff {
  double max_abs_diff = 0;
  double max_abs_ref = 0;
  double relative() const { return max_abs_ref > 0 ? max_abs_diff / max_abs_ref : max_abs_diff; }
};
LogitDiff compare(const float* ours, const float* ref, int64_t n);

// ||a - ref|| / ||ref|| over n values in float64; infinity when a holds a non-finite value.
double relative_l2(const float* a, const float* ref, size_t n);

}  // namespace ctx::test
