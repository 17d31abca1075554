#include "core/model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/base/error.h"

namespace ctx {

KvCache::KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, std::shared_ptr<BlockPool> pool)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), pool_(std::move(pool)) {
  if (!pool_) {
    k_.resize(size_t(layers_));
    v_.resize(size_t(layers_));
  }
}

KvCache::KvCache(const ModelConfig& c, int64_t initial_capacity)
    : KvCache(c.num_layers, c.num_kv_heads, c.head_dim, nullptr) {
  if (initial_capacity > 0) reserve(initial_capacity);
}

KvCache::KvCache(const ModelConfig& c, std::shared_ptr<BlockPool> pool)
    : KvCache(c.num_layers, c.num_kv_heads, c.head_dim, std::move(pool)) {
  CTX_CHECK(pool_ != nullptr);
}

KvCache& KvCache::operator=(KvCache&& o) noexcept {
  if (this != &o) {
    release_blocks();
    layers_ = o.layers_, kv_heads_ = o.kv_heads_, head_dim_ = o.head_dim_;
    length_ = std::exchange(o.length_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
    k_ = std::move(o.k_), v_ = std::move(o.v_);
    pool_ = std::move(o.pool_);
    blocks_ = std::move(o.blocks_);
    o.blocks_.clear();
  }
  return *this;
}

KvCache::~KvCache() { release_blocks(); }

void KvCache::release_blocks() {
  if (pool_)
    for (int32_t b : blocks_) pool_->release(b);
  blocks_.clear();
}

int64_t KvCache::capacity() const { return pool_ ? int64_t(blocks_.size()) * pool_->block_size() : capacity_; }

void KvCache::reserve(int64_t n) {
  if (pool_) {
    const int64_t bs = pool_->block_size();
    // Copy-on-write: the block that the next position lands in must be ours alone.
    if (length_ % bs != 0 && n > length_) {
      int32_t& last = blocks_[size_t(length_ / bs)];
      if (pool_->ref_count(last) > 1) {
        const int32_t mine = pool_->copy(last);
        pool_->release(last);
        last = mine;
      }
    }
    while (int64_t(blocks_.size()) * bs < n) blocks_.push_back(pool_->allocate());
    return;
  }
  if (n <= capacity_) return;
  const int64_t new_cap = std::max<int64_t>(n, std::max<int64_t>(16, capacity_ * 2));
  for (auto* bufs : {&k_, &v_})
    for (auto& buf : *bufs) {
      Storage grown(size_t(kv_heads_ * new_cap * head_dim_));
      for (int64_t h = 0; h < kv_heads_ && length_ > 0; ++h)
        std::memcpy(grown.data() + h * new_cap * head_dim_, buf.data() + h * capacity_ * head_dim_,
                    size_t(length_ * head_dim_) * sizeof(float));
      buf.swap(grown);
    }
  capacity_ = new_cap;
}

void KvCache::clear() {
  release_blocks();
  length_ = 0;
}

// Slots are addressed through the read view, so the layout arithmetic lives in KvView alone; the
// storage it points to is this cache's own (or its pool's), hence writable.
float* KvCache::key_slot(int64_t layer, int64_t head, int64_t pos) {
  return const_cast<float*>(view(layer).key(head, pos));
}

float* KvCache::value_slot(int64_t layer, int64_t head, int64_t pos) {
  return const_cast<float*>(view(layer).value(head, pos));
}

KvView KvCache::view(int64_t layer) const {
  KvView v;
  v.length = length_;
  v.num_kv_heads = kv_heads_;
  v.head_dim = head_dim_;
  if (pool_) {
    v.layout = KvLayout::kPaged;
    v.k = pool_->k(layer);
    v.v = pool_->v(layer);
    v.block_table = blocks_.data();
    v.block_size = pool_->block_size();
    v.pool_blocks = pool_->blocks_total();
  } else {
    v.k = k_[size_t(layer)].data();
    v.v = v_[size_t(layer)].data();
    v.capacity = capacity_;
  }
  return v;
}

KvCache KvCache::fork() const {
  KvCache c(layers_, kv_heads_, head_dim_, pool_);
  c.length_ = length_;
  if (pool_) {
    c.blocks_ = blocks_;
    for (int32_t b : blocks_) pool_->retain(b);
  } else {
    c.capacity_ = capacity_;
    c.k_ = k_;
    c.v_ = v_;
  }
  return c;
}

int64_t KvCache::bytes_reserved() const { return capacity() * position_bytes(); }
int64_t KvCache::bytes_used() const { return length_ * position_bytes(); }

}  // namespace ctx
