#include "core/model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace ctx {

KvCache::KvCache(const ModelConfig& c, int64_t initial_capacity)
    : layers_(c.num_layers), kv_heads_(c.num_kv_heads), head_dim_(c.head_dim) {
  k_.resize(size_t(layers_));
  v_.resize(size_t(layers_));
  if (initial_capacity > 0) reserve(initial_capacity);
}

void KvCache::reserve(int64_t n) {
  if (n <= capacity_) return;
  const int64_t new_cap = std::max<int64_t>(n, std::max<int64_t>(16, capacity_ * 2));
  for (auto* bufs : {&k_, &v_})
    for (auto& buf : *bufs) {
      std::vector<float> grown(size_t(kv_heads_ * new_cap * head_dim_));
      for (int64_t h = 0; h < kv_heads_ && length_ > 0; ++h)
        std::memcpy(grown.data() + h * new_cap * head_dim_, buf.data() + h * capacity_ * head_dim_,
                    size_t(length_ * head_dim_) * sizeof(float));
      buf.swap(grown);
    }
  capacity_ = new_cap;
}

int64_t KvCache::bytes_reserved() const { return 2 * layers_ * kv_heads_ * capacity_ * head_dim_ * 4; }
int64_t KvCache::bytes_used() const { return 2 * layers_ * kv_heads_ * length_ * head_dim_ * 4; }

}  // namespace ctx
