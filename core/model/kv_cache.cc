#include "core/model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/base/error.h"

namespace ctx {
namespace {

// Rows index(h, i), i < count, of every KV head of `src` into k and v [kv_heads][stride][head_dim].
template <class Index>
void gather_rows(const KvView& src, int64_t count, int64_t stride, Index index, float* k, float* v) {
  const int64_t hd = src.head_dim;
  const size_t row = size_t(hd) * sizeof(float);
  for (int64_t h = 0; h < src.num_kv_heads; ++h)
    for (int64_t i = 0; i < count; ++i) {
      const int64_t j = index(h, i);
      std::memcpy(k + (h * stride + i) * hd, src.key(h, j), row);
      std::memcpy(v + (h * stride + i) * hd, src.value(h, j), row);
    }
}

}  // namespace

KvCache::KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, std::shared_ptr<BlockPool> pool)
    : layers_(layers), kv_heads_(kv_heads), head_dim_(head_dim), pool_(std::move(pool)) {
  lengths_.assign(size_t(layers_), 0);
  states_.resize(size_t(layers_));
  if (!pool_) {
    k_.resize(size_t(layers_));
    v_.resize(size_t(layers_));
    capacities_.assign(size_t(layers_), 0);
  }
}

KvCache::KvCache(const ModelConfig& c, int64_t initial_capacity)
    : KvCache(c.num_kv_layers(), c.num_kv_heads, c.head_dim, nullptr) {
  recurrent_ = RecurrentState(c);
  if (initial_capacity > 0) reserve(initial_capacity);
}

KvCache::KvCache(const ModelConfig& c, std::shared_ptr<BlockPool> pool)
    : KvCache(c.num_kv_layers(), c.num_kv_heads, c.head_dim, std::move(pool)) {
  recurrent_ = RecurrentState(c);
  CTX_CHECK(pool_ != nullptr);
}

KvCache& KvCache::operator=(KvCache&& o) noexcept {
  if (this != &o) {
    release_blocks();
    layers_ = o.layers_, kv_heads_ = o.kv_heads_, head_dim_ = o.head_dim_;
    position_ = std::exchange(o.position_, 0);
    lengths_ = std::move(o.lengths_), states_ = std::move(o.states_), capacities_ = std::move(o.capacities_);
    k_ = std::move(o.k_), v_ = std::move(o.v_);
    quant_ = std::move(o.quant_), quantized_ = std::move(o.quantized_);
    pool_ = std::move(o.pool_);
    blocks_ = std::move(o.blocks_);
    o.blocks_.clear();
    recurrent_ = std::move(o.recurrent_);
  }
  return *this;
}

KvCache::~KvCache() { release_blocks(); }

void KvCache::release_blocks() {
  if (pool_)
    for (int32_t b : blocks_)
      if (b != kReleasedBlock) pool_->release(b);
  blocks_.clear();
}

int64_t KvCache::held_blocks() const {
  return int64_t(std::count_if(blocks_.begin(), blocks_.end(), [](int32_t b) { return b != kReleasedBlock; }));
}

void KvCache::release_quantized_blocks() {
  if (!pool_ || quantized_.empty()) return;
  int64_t below = quantized_length(0);  // entries every layer holds quantized
  for (int64_t l = 1; l < layers_; ++l) below = std::min(below, quantized_length(l));
  for (int64_t i = 0; i < below / pool_->block_size() && i < int64_t(blocks_.size()); ++i)
    if (blocks_[size_t(i)] != kReleasedBlock) {
      pool_->release(blocks_[size_t(i)]);
      blocks_[size_t(i)] = kReleasedBlock;
    }
}

int64_t KvCache::capacity(int64_t layer) const {
  return pool_ ? int64_t(blocks_.size()) * pool_->block_size() : capacities_[size_t(layer)] + quantized_length(layer);
}

int64_t KvCache::max_length() const { return *std::max_element(lengths_.begin(), lengths_.end()); }

void KvCache::make_private(int64_t first_block, int64_t end_block) {
  for (int64_t i = first_block; i < end_block && i < int64_t(blocks_.size()); ++i) {
    int32_t& b = blocks_[size_t(i)];
    if (b == kReleasedBlock) {  // a quantized prefix's block that is written again (a rebuilt layer)
      b = pool_->allocate();
    } else if (pool_->ref_count(b) > 1) {
      const int32_t mine = pool_->copy(b);
      pool_->release(b);
      b = mine;
    }
  }
}

void KvCache::reserve(int64_t n) {
  const int64_t extra = n - position_;
  if (extra <= 0) return;
  if (pool_) {
    const int64_t bs = pool_->block_size();
    // Copy-on-write: blocks with valid entries that the next writes land in must be ours alone.
    const int64_t first = *std::min_element(lengths_.begin(), lengths_.end());
    make_private(first / bs, (max_length() + bs - 1) / bs);
    while (int64_t(blocks_.size()) * bs < max_length() + extra) blocks_.push_back(pool_->allocate());
    return;
  }
  for (size_t l = 0; l < size_t(layers_); ++l) {
    const int64_t stored = float_length(l), need = stored + extra, cap = capacities_[l];
    if (need > cap) relocate(l, std::max<int64_t>(need, std::max<int64_t>(16, cap * 2)), 0, stored);
  }
}

void KvCache::relocate(size_t l, int64_t new_cap, int64_t from, int64_t count) {
  const int64_t cap = capacities_[l];
  for (auto* buf : {&k_[l], &v_[l]}) {
    Storage moved(size_t(kv_heads_ * new_cap * head_dim_));
    for (int64_t h = 0; h < kv_heads_ && count > 0; ++h)
      std::memcpy(moved.data() + h * new_cap * head_dim_, buf->data() + (h * cap + from) * head_dim_,
                  size_t(count * head_dim_) * sizeof(float));
    buf->swap(moved);
  }
  capacities_[l] = new_cap;
}

void KvCache::set_quantization(const KvQuantConfig& config) {
  for (int64_t l = 0; l < layers_; ++l) CTX_CHECK(quantized_length(l) == 0, "KV quantization set after entries were quantized");
  quant_ = config;
  quantized_.clear();
  if (config.enabled())
    for (int64_t l = 0; l < layers_; ++l) quantized_.emplace_back(config, kv_heads_, head_dim_);
}

int64_t KvCache::quantized_length(int64_t layer) const {
  return quantized_.empty() ? 0 : quantized_[size_t(layer)].length();
}

void KvCache::flush(int64_t layer) {
  if (!quant_.enabled()) return;
  const size_t l = size_t(layer);
  const int64_t n = quant_.quantized_length(lengths_[l]) - quantized_length(layer);
  if (n <= 0) return;
  if (pool_) {  // entries stay at their positions in the blocks: gathered, quantized, blocks below released
    const int64_t q = quantized_length(layer);
    std::vector<float> k(size_t(kv_heads_ * n * head_dim_)), v(k.size());
    gather_rows(float_view(layer), n, n, [q](int64_t, int64_t i) { return q + i; }, k.data(), v.data());
    quantized_[l].append(k.data(), v.data(), n * head_dim_, n);
    release_quantized_blocks();
    return;
  }
  const int64_t cap = capacities_[l], rest = float_length(l) - n, window = quant_.residual + quant_.group;
  quantized_[l].append(k_[l].data(), v_[l].data(), cap * head_dim_, n);
  if (cap > window) {
    relocate(l, std::max(window, rest), n, rest);
    return;
  }
  for (auto* buf : {&k_[l], &v_[l]})
    for (int64_t h = 0; h < kv_heads_; ++h)
      std::memmove(buf->data() + h * cap * head_dim_, buf->data() + (h * cap + n) * head_dim_,
                   size_t(rest * head_dim_) * sizeof(float));
}

void KvCache::set_length(int64_t n) {
  position_ = n;
  std::fill(lengths_.begin(), lengths_.end(), n);
}

void KvCache::append(int64_t layer, int64_t n) {
  CTX_CHECK(lengths_[size_t(layer)] + n <= capacity(layer), "append beyond the reserved capacity");
  lengths_[size_t(layer)] += n;
}

void KvCache::compact(int64_t layer, int64_t count, const std::vector<int64_t>& keep, int64_t headroom) {
  const size_t li = size_t(layer);
  const int64_t len = lengths_[li];
  CTX_CHECK(count >= 0 && count <= len && int64_t(keep.size()) == count * kv_heads_, "bad compaction of layer ", layer);
  for (int64_t h = 0; h < kv_heads_; ++h)
    for (int64_t i = 0; i < count; ++i) {
      const int64_t j = keep[size_t(h * count + i)];
      CTX_CHECK(j >= 0 && j < len && (i == 0 || j > keep[size_t(h * count + i - 1)]),
                "compaction indices must increase within [0, length) per head");
    }
  const size_t row = size_t(head_dim_) * sizeof(float);
  const auto kept_index = [&](int64_t h, int64_t i) { return keep[size_t(h * count + i)]; };
  if (pool_ && quantized_length(layer) > 0) {
    // The rebuild (see the header) into the blocks: every entry as float, the kept ones written to
    // positions 0 .. count - 1 (blocks released under the quantized prefix are taken again).
    std::vector<float> dequantized, kept(size_t(2 * kv_heads_ * count * head_dim_));
    gather_rows(view(layer, dequantized), count, count, kept_index, kept.data(),
                kept.data() + kv_heads_ * count * head_dim_);
    quantized_[li].clear();
    make_private(0, (count + pool_->block_size() - 1) / pool_->block_size());
    for (int64_t h = 0; h < kv_heads_; ++h)
      for (int64_t i = 0; i < count; ++i) {
        std::memcpy(key_slot(layer, h, i), kept.data() + (h * count + i) * head_dim_, row);
        std::memcpy(value_slot(layer, h, i), kept.data() + ((kv_heads_ + h) * count + i) * head_dim_, row);
      }
  } else if (pool_) {
    // In place: keep[i] >= i, so moving rows front to back never overwrites a row still to move.
    make_private(0, (count + pool_->block_size() - 1) / pool_->block_size());
    for (int64_t h = 0; h < kv_heads_; ++h)
      for (int64_t i = 0; i < count; ++i) {
        const int64_t j = keep[size_t(h * count + i)];
        if (j == i) continue;
        std::memcpy(key_slot(layer, h, i), view(layer).key(h, j), row);
        std::memcpy(value_slot(layer, h, i), view(layer).value(h, j), row);
      }
  } else {
    // Gathered from every entry as float: a quantized prefix dequantized (the rebuild; see the header).
    std::vector<float> dequantized;
    const int64_t new_cap = count + std::max<int64_t>(0, headroom);
    Storage kk(size_t(kv_heads_ * new_cap * head_dim_)), vv(size_t(kv_heads_ * new_cap * head_dim_));
    gather_rows(view(layer, dequantized), count, new_cap, kept_index, kk.data(), vv.data());
    k_[li].swap(kk), v_[li].swap(vv);
    capacities_[li] = new_cap;
    if (!quantized_.empty()) quantized_[li].clear();  // its codes and params freed; flush() below re-quantizes
  }
  auto& scores = states_[li].scores;
  for (int64_t h = 0; h < int64_t(scores.size()); ++h) {
    auto& s = scores[size_t(h)];
    CTX_CHECK(int64_t(s.size()) == len, "compressor state of layer ", layer, " does not match its length");
    for (int64_t i = 0; i < count; ++i) s[size_t(i)] = s[size_t(keep[size_t(h * count + i)])];
    s.resize(size_t(count));
  }
  lengths_[li] = count;
  flush(layer);  // the kept entries' quantized prefix, in fresh groups (nothing when quantization is off)
}

void KvCache::trim() {
  if (!pool_) return;
  const int64_t bs = pool_->block_size(), need = (max_length() + bs - 1) / bs;
  while (int64_t(blocks_.size()) > need) {
    if (blocks_.back() != kReleasedBlock) pool_->release(blocks_.back());
    blocks_.pop_back();
  }
}

void KvCache::clear() {
  release_blocks();
  position_ = 0;
  std::fill(lengths_.begin(), lengths_.end(), 0);
  for (auto& s : states_) s = KvLayerState{};
  for (auto& q : quantized_) q.clear();
  recurrent_.clear();
}

// Slots are addressed through the float view, so the layout arithmetic lives in KvView alone; the
// storage it points to is this cache's own (or its pool's), hence writable.
float* KvCache::key_slot(int64_t layer, int64_t head, int64_t pos) {
  return const_cast<float*>(float_view(layer).key(head, float_index(layer, pos)));
}

float* KvCache::value_slot(int64_t layer, int64_t head, int64_t pos) {
  return const_cast<float*>(float_view(layer).value(head, float_index(layer, pos)));
}

KvView KvCache::view(int64_t layer) const {
  CTX_CHECK(quantized_length(layer) == 0, "layer ", layer, " holds quantized entries: use view(layer, scratch)");
  return float_view(layer);
}

KvView KvCache::view(int64_t layer, std::vector<float>& scratch) const {
  const int64_t q = quantized_length(layer);
  if (q == 0) return view(layer);
  const size_t l = size_t(layer);
  const int64_t len = lengths_[l], head_floats = len * head_dim_;
  scratch.resize(size_t(2 * kv_heads_ * head_floats));
  float *k = scratch.data(), *v = k + kv_heads_ * head_floats;
  const KvView floats = float_view(layer);
#pragma omp parallel for schedule(static) if (kv_heads_ * head_floats > 65536)
  for (int64_t h = 0; h < kv_heads_; ++h) {
    quantized_[l].dequantize(h, k + h * head_floats, v + h * head_floats);
    // The float entries q .. len - 1, in runs of consecutive rows (one run when contiguous).
    floats.for_each_run(float_index(layer, q), float_index(layer, len), [&](int64_t i, int64_t rows) {
      const int64_t dst = h * head_floats + pos_of_float(layer, i) * head_dim_;
      const size_t bytes = size_t(rows * head_dim_) * sizeof(float);
      std::memcpy(k + dst, floats.key(h, i), bytes);
      std::memcpy(v + dst, floats.value(h, i), bytes);
    });
  }
  KvView out;
  out.k = k, out.v = v, out.length = len, out.capacity = len;
  out.num_kv_heads = kv_heads_, out.head_dim = head_dim_;
  return out;
}

KvView KvCache::float_view(int64_t layer) const {
  KvView v;
  v.length = lengths_[size_t(layer)] - quantized_length(layer);
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
    v.capacity = capacities_[size_t(layer)];
  }
  return v;
}

KvCache KvCache::fork() const {
  KvCache c(layers_, kv_heads_, head_dim_, pool_);
  c.position_ = position_;
  c.lengths_ = lengths_;
  c.states_ = states_;
  c.recurrent_ = recurrent_;
  c.quant_ = quant_;
  c.quantized_ = quantized_;
  if (pool_) {
    c.blocks_ = blocks_;
    for (int32_t b : blocks_)
      if (b != kReleasedBlock) pool_->retain(b);
  } else {
    c.capacities_ = capacities_;
    c.k_ = k_;
    c.v_ = v_;
  }
  return c;
}

int64_t KvCache::bytes_reserved() const {
  int64_t entries = 0, quantized = 0;
  if (pool_) {
    entries = held_blocks() * pool_->block_size() * layers_;
  } else {
    for (int64_t cap : capacities_) entries += cap;
  }
  for (const auto& q : quantized_) quantized += q.bytes_reserved();
  return entries * entry_bytes() + quantized + recurrent_bytes();
}

int64_t KvCache::bytes_used() const {
  int64_t entries = 0, quantized = 0;
  for (int64_t l = 0; l < layers_; ++l) entries += float_length(size_t(l));
  for (const auto& q : quantized_) quantized += q.bytes_used();
  return entries * entry_bytes() + quantized + recurrent_bytes();
}

}  // namespace ctx
