// A pool of fixed-size KV blocks shared by the paged caches of one model instance (PagedAttention):
// for each attention (KV) layer, K and V storage of [num_kv_heads][num_blocks][block_size][head_dim] floats. A block
// id names the same slot in every KV head's region (one block table serves all heads), and a head's
// blocks are adjacent, so a sequence whose blocks were allocated in order reads each head's keys as
// one stream (block-major storage would interleave the heads: runs of block_size rows, strided).
// Blocks are reference-counted so sequences can share a common prefix (copy-on-write, see
// KvCache::fork); a released block goes to a free list and is reused before the pool grows.
// Growing moves storage: views taken earlier become invalid. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "core/base/huge_page_allocator.h"
#include "core/model/model_config.h"

namespace ctx {

class BlockPool {
 public:
  BlockPool(const ModelConfig& config, int64_t block_size);

  int64_t block_size() const { return block_size_; }
  int64_t block_floats() const { return kv_heads_ * block_size_ * head_dim_; }  // all heads of one block

  int32_t allocate();             // refcount 1; reuses a freed block first
  void retain(int32_t block);     // refcount + 1
  void release(int32_t block);    // refcount - 1; freed at 0
  int32_t ref_count(int32_t block) const { return refs_[size_t(block)]; }
  // A private copy of `block` (all layers, K and V); the caller then releases `block`.
  int32_t copy(int32_t block);

  float* k(int64_t layer) { return k_[size_t(layer)].data(); }
  float* v(int64_t layer) { return v_[size_t(layer)].data(); }
  const float* k(int64_t layer) const { return k_[size_t(layer)].data(); }
  const float* v(int64_t layer) const { return v_[size_t(layer)].data(); }

  int64_t blocks_total() const { return int64_t(refs_.size()); }
  int64_t blocks_in_use() const { return blocks_total() - int64_t(free_.size()); }
  // Bytes of K+V storage held by the pool, and by blocks in use.
  int64_t bytes_reserved() const;
  int64_t bytes_in_use() const;

 private:
  void grow();

  int64_t layers_, kv_heads_, head_dim_, block_size_;
  using Storage = std::vector<float, HugePageAllocator<float>>;
  std::vector<Storage> k_, v_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;
};

}  // namespace ctx
