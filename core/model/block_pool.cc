#include "core/model/block_pool.h"

#include <algorithm>
#include <cstring>

#include "core/base/error.h"

namespace ctx {

BlockPool::BlockPool(const ModelConfig& c, int64_t block_size)
    : layers_(c.num_kv_layers()), kv_heads_(c.num_kv_heads), head_dim_(c.head_dim), block_size_(block_size) {
  CTX_CHECK(block_size > 0);
  k_.resize(size_t(layers_));
  v_.resize(size_t(layers_));
}

void BlockPool::grow() {
  const size_t old_blocks = refs_.size();
  const size_t new_blocks = std::max<size_t>(16, old_blocks * 2);
  const size_t head_block = size_t(block_size_ * head_dim_);  // floats of one head in one block
  for (auto* bufs : {&k_, &v_})
    for (auto& buf : *bufs) {
      Storage grown(new_blocks * size_t(block_floats()));
      for (size_t h = 0; h < size_t(kv_heads_) && old_blocks > 0; ++h)
        std::memcpy(grown.data() + h * new_blocks * head_block, buf.data() + h * old_blocks * head_block,
                    old_blocks * head_block * sizeof(float));
      buf = std::move(grown);
    }
  refs_.resize(new_blocks, 0);
  for (size_t b = new_blocks; b-- > old_blocks;) free_.push_back(int32_t(b));  // lowest id allocated first
}

int32_t BlockPool::allocate() {
  if (free_.empty()) grow();
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[size_t(b)] = 1;
  return b;
}

void BlockPool::retain(int32_t b) {
  CTX_CHECK(refs_[size_t(b)] > 0, "retain of free block ", b);
  ++refs_[size_t(b)];
}

void BlockPool::release(int32_t b) {
  CTX_CHECK(refs_[size_t(b)] > 0, "release of free block ", b);
  if (--refs_[size_t(b)] == 0) free_.push_back(b);
}

int32_t BlockPool::copy(int32_t src) {
  const int32_t dst = allocate();  // may grow: index storage only after
  const size_t n = size_t(block_size_ * head_dim_), blocks = refs_.size();
  for (auto* bufs : {&k_, &v_})
    for (auto& buf : *bufs)
      for (size_t h = 0; h < size_t(kv_heads_); ++h)
        std::memcpy(buf.data() + (h * blocks + size_t(dst)) * n, buf.data() + (h * blocks + size_t(src)) * n,
                    n * sizeof(float));
  return dst;
}

int64_t BlockPool::bytes_reserved() const { return 2 * layers_ * blocks_total() * block_floats() * 4; }
int64_t BlockPool::bytes_in_use() const { return 2 * layers_ * blocks_in_use() * block_floats() * 4; }

}  // namespace ctx
