// The KV cache of one sequence, in one of two layouts (see core/attention/kv_view.h):
//   contiguous: per layer, K and V as [kv_heads][capacity][head_dim]; grows by doubling
//   paged:      a block table into a shared BlockPool; blocks allocated on demand, released when
//               the cache is cleared or destroyed; fork() shares blocks copy-on-write
// Writers reserve() room first, then fill slots through key_slot()/value_slot(), then set_length().
// Not thread-safe: one sequence is advanced by one caller at a time (a pool is shared, so caches of
// one pool must be advanced by one thread).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/attention/kv_view.h"
#include "core/base/huge_page_allocator.h"
#include "core/model/block_pool.h"
#include "core/model/model_config.h"

namespace ctx {

class KvCache {
 public:
  // Contiguous layout.
  explicit KvCache(const ModelConfig& config, int64_t initial_capacity = 0);
  // Paged layout over `pool`.
  KvCache(const ModelConfig& config, std::shared_ptr<BlockPool> pool);

  KvCache(KvCache&& o) noexcept = default;
  KvCache& operator=(KvCache&& o) noexcept;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  ~KvCache();

  KvLayout layout() const { return pool_ ? KvLayout::kPaged : KvLayout::kContiguous; }
  int64_t length() const { return length_; }
  // Positions that fit without allocating.
  int64_t capacity() const;

  // Ensures room for n positions in total. Paged: allocates blocks, and gives this cache a private
  // copy of a shared block that positions >= length() would write into (copy-on-write).
  void reserve(int64_t n);
  // Marks positions [0, n) valid (their slots must have been written).
  void set_length(int64_t n) { length_ = n; }
  // Drops all positions (paged: releases the blocks).
  void clear();

  // Writable slot of (layer, kv head, position); position < capacity().
  float* key_slot(int64_t layer, int64_t head, int64_t pos);
  float* value_slot(int64_t layer, int64_t head, int64_t pos);

  KvView view(int64_t layer) const;

  // A cache with the same contents. Paged: shares every block (no copy until one is written);
  // contiguous: a deep copy.
  KvCache fork() const;

  // Bytes held for this sequence (allocated capacity, or blocks in its table) and bytes of valid
  // entries; their difference is the waste.
  int64_t bytes_reserved() const;
  int64_t bytes_used() const;
  const std::vector<int32_t>& block_table() const { return blocks_; }

 private:
  KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, std::shared_ptr<BlockPool> pool);
  void release_blocks();
  int64_t position_bytes() const { return 2 * layers_ * kv_heads_ * head_dim_ * 4; }

  int64_t layers_, kv_heads_, head_dim_;
  int64_t length_ = 0;
  // contiguous
  int64_t capacity_ = 0;
  using Storage = std::vector<float, HugePageAllocator<float>>;  // contiguous layout
  std::vector<Storage> k_, v_;
  // paged
  std::shared_ptr<BlockPool> pool_;
  std::vector<int32_t> blocks_;
};

}  // namespace ctx
