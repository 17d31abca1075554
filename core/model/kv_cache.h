// A contiguous KV cache for one sequence: for each layer, K and V as [kv_heads][capacity][head_dim]
// float32, so one head's keys are one contiguous [length, head_dim] matrix. Grows by doubling and
// keeps its contents. Not thread-safe: one sequence is advanced by one caller at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "core/model/model_config.h"

namespace ctx {

class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t initial_capacity = 0);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  // Ensures room for n positions in total.
  void reserve(int64_t n);
  // Marks positions [0, n) valid (the forward pass writes them first).
  void set_length(int64_t n) { length_ = n; }
  void clear() { length_ = 0; }

  float* k(int64_t layer) { return k_[size_t(layer)].data(); }
  float* v(int64_t layer) { return v_[size_t(layer)].data(); }
  const float* k(int64_t layer) const { return k_[size_t(layer)].data(); }
  const float* v(int64_t layer) const { return v_[size_t(layer)].data(); }
  // Offset of (head, position) inside one layer's K or V buffer.
  int64_t offset(int64_t head, int64_t pos) const { return (head * capacity_ + pos) * head_dim_; }

  // Bytes allocated, and bytes holding valid entries.
  int64_t bytes_reserved() const;
  int64_t bytes_used() const;

 private:
  int64_t layers_, kv_heads_, head_dim_;
  int64_t capacity_ = 0, length_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace ctx
