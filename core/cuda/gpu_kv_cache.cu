#include "core/cuda/gpu_kv_cache.h"

#include <algorithm>
#include <utility>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/kernels/kivi_kernels.h"

namespace ctx::cuda {

GpuKvCache::GpuKvCache(DeviceAllocator& alloc, const GpuKvShape& shape) : alloc_(alloc), shape_(shape) {
  const GpuKvShape& s = shape_;
  if (s.slots < 1 || s.capacity < 1) fail("GPU KV cache: slots ", s.slots, " and capacity ", s.capacity, " must be >= 1");
  if (s.block_size < 0 || s.block_size > 1024 || (s.block_size & (s.block_size - 1)) != 0)
    fail("GPU KV cache: kv_block_size ", s.block_size, " must be 0 (contiguous) or a power of two <= 1024");
  if (paged()) {
    while ((int64_t(1) << shift_) < s.block_size) ++shift_;
    max_blocks_ = (s.capacity + s.block_size - 1) / s.block_size;
    const int64_t positions = s.pool_positions > 0 ? s.pool_positions : s.slots * s.capacity;
    max_pool_blocks_ = (positions + s.block_size - 1) / s.block_size;  // the pool starts empty: grow()
    table_ = DeviceBuffer<int32_t>(alloc, s.slots * max_blocks_);
    table_host_.assign(size_t(s.slots * max_blocks_), 0);
    CTX_CUDA_CHECK(cudaMemset(table_.get(), 0, table_.bytes()));
    held_.assign(size_t(s.slots), 0);
  }
  if (s.quant.enabled()) {
    const KvQuantConfig& q = s.quant;
    if (q.bits != 2 && q.bits != 4 && q.bits != 8) fail("GPU KV cache: kv_quant bits ", q.bits, " must be 2, 4 or 8");
    if (q.group < 1 || q.residual < 0)
      fail("GPU KV cache: kv_quant group ", q.group, " must be >= 1 and residual ", q.residual, " >= 0");
    if (s.max_forward < 1) fail("GPU KV cache: KIVI needs max_forward >= 1, not ", s.max_forward);
    // A forward of n tokens at pos0 reads bf16 positions qlen(pos0) .. pos0 + n - 1: fewer than
    // residual + group + n of them (kernels.h: KiviKv::ring). Paged: whole blocks of them.
    ring_ = q.residual + q.group + s.max_forward;
    if (paged()) ring_ = (ring_ + s.block_size - 1) / s.block_size * s.block_size;
    if (ring_ >= s.capacity) ring_ = 0;  // no smaller than the positions themselves
  }
  k_.resize(size_t(s.layers));
  v_.resize(size_t(s.layers));
  layer_blocks_.assign(size_t(s.layers), 0);
  if (!paged())
    for (int64_t l = 0; l < s.layers; ++l) {
      k_[size_t(l)] = DeviceBuffer<bf16>(alloc, layer_elements(0));
      v_[size_t(l)] = DeviceBuffer<bf16>(alloc, layer_elements(0));
    }
  if (s.quant.enabled()) {  // the codes start empty: reserve() grows them
    kivi_.resize(size_t(s.layers));
    kivi_rows_.assign(size_t(s.layers), -1);
    resize_codes(0, nullptr);
  }
  release_all();
}

KiviKv GpuKvCache::kivi(int64_t layer) const {
  const KvQuantConfig& q = shape_.quant;
  const KiviLayer& k = kivi_[size_t(layer)];
  KiviKv kv{q.bits, q.group, q.residual, ring_, k.k_codes.get(), k.v_codes.get(), k.k_params.get(), k.v_params.get()};
  kv.code_rows = kivi_rows_[size_t(layer)];
  if (kv.code_rows == 0) kv.code_rows = q.group;  // an empty layer: nothing is read (0 would mean the capacity)
  return kv;
}

GpuKvCache::KiviHeadElems GpuKvCache::kivi_head_elems(int64_t rows) const {
  const int64_t g = shape_.quant.group, hd = shape_.head_dim;
  return {rows * kv_quant_row_bytes(hd, shape_.quant.bits), rows / g * hd, rows * ((hd + g - 1) / g)};
}

void GpuKvCache::resize_codes(int64_t rows, cudaStream_t stream) {
  const GpuKvShape& s = shape_;
  const int64_t g = s.quant.group, rb = kv_quant_row_bytes(s.head_dim, s.quant.bits), nb = (s.head_dim + g - 1) / g;
  const int64_t heads = s.slots * s.kv_heads;  // (slot, KV head) pairs, each with `rows` code rows
  CTX_CHECK(rows >= 0 && rows % g == 0, "KIVI code rows ", rows, " must be a multiple of the group ", g);
  const KiviHeadElems per = kivi_head_elems(rows);
  ++version_;  // even a resize that fails part-way may have moved some layers
  for (size_t l = 0; l < kivi_.size(); ++l) {
    const int64_t old = kivi_rows_[l];
    if (old == rows) continue;
    KiviLayer next;
    // At least one element each: an empty layer still hands out valid pointers.
    next.k_codes = DeviceBuffer<uint8_t>(alloc_, std::max<int64_t>(1, heads * per.codes));
    next.v_codes = DeviceBuffer<uint8_t>(alloc_, std::max<int64_t>(1, heads * per.codes));
    next.k_params = DeviceBuffer<KiviParam>(alloc_, std::max<int64_t>(1, heads * per.k_params));
    next.v_params = DeviceBuffer<KiviParam>(alloc_, std::max<int64_t>(1, heads * per.v_params));
    // Per (slot, KV head) the first min(old, rows) entries: codes and params rows are
    // [slot][head][entries][...].
    const int64_t keep = std::min(old, rows);
    KiviLayer& cur = kivi_[l];
    const auto copy = [&](void* dst, const void* src, int64_t row_bytes) {
      if (keep <= 0 || row_bytes == 0) return;
      CTX_CUDA_CHECK(cudaMemcpy2DAsync(dst, size_t(rows * row_bytes), src, size_t(old * row_bytes),
                                       size_t(keep * row_bytes), size_t(heads), cudaMemcpyDeviceToDevice, stream));
    };
    copy(next.k_codes.get(), cur.k_codes.get(), rb);
    copy(next.v_codes.get(), cur.v_codes.get(), rb);
    copy(next.v_params.get(), cur.v_params.get(), nb * int64_t(sizeof(KiviParam)));
    constexpr int64_t kParam = sizeof(KiviParam);
    if (keep > 0)  // key params: one row of head_dim per group
      CTX_CUDA_CHECK(cudaMemcpy2DAsync(next.k_params.get(), size_t(rows / g * s.head_dim * kParam), cur.k_params.get(),
                                       size_t(old / g * s.head_dim * kParam), size_t(keep / g * s.head_dim * kParam),
                                       size_t(heads), cudaMemcpyDeviceToDevice, stream));
    // The old buffers go back to the allocator's cache; work on `stream` orders any reuse after the copy.
    cur = std::move(next);
    kivi_rows_[l] = rows;
  }
  code_rows_ = rows;
  if (stream) alloc_.empty_cache();  // the old buffers back to the driver (cudaFree waits for the copies)
}

void GpuKvCache::fit_codes(int64_t positions, cudaStream_t stream) {
  if (!shape_.quant.enabled()) return;
  const int64_t rows = shape_.quant.quantized_length(std::min(positions, shape_.capacity));
  if (rows != code_rows_) resize_codes(rows, stream);
}

KiviLayerCopy GpuKvCache::layer_copy(int64_t layer, int64_t quantized, int64_t length, bf16* k_full, bf16* v_full,
                                     int64_t full_rows, int64_t slot) const {
  CTX_CHECK(slot >= 0 && slot < shape_.slots, "KV slot ", slot);
  QkvRopeParams r;
  AttentionParams a;
  bind(layer, slot, r, a);
  KiviLayerCopy p;
  p.k_cache = r.k_cache, p.v_cache = r.v_cache, p.kv = a.kivi;
  p.kv_heads = shape_.kv_heads, p.hd = shape_.head_dim, p.capacity = shape_.capacity;
  p.pool = a.pool;
  p.k_full = k_full, p.v_full = v_full, p.quantized = quantized, p.length = length, p.full_rows = full_rows;
  return p;
}

void GpuKvCache::expand(int64_t layer, int64_t quantized, int64_t length, bf16* k_full, bf16* v_full,
                        int64_t full_rows, cudaStream_t stream, int64_t slot) const {
  launch_kivi_expand(layer_copy(layer, quantized, length, k_full, v_full, full_rows, slot), stream);
}

void GpuKvCache::store(int64_t layer, int64_t quantized, int64_t length, const bf16* k_full, const bf16* v_full,
                       int64_t full_rows, cudaStream_t stream) const {
  const KiviLayerCopy p =
      layer_copy(layer, quantized, length, const_cast<bf16*>(k_full), const_cast<bf16*>(v_full), full_rows);
  launch_kivi_store_float(p, stream);
  KiviQuantizeParams q;
  q.k_cache = k_full, q.v_cache = v_full, q.kv = p.kv;
  q.kv_heads = shape_.kv_heads, q.hd = shape_.head_dim, q.capacity = shape_.capacity;
  q.seq = 0, q.group_begin = 0, q.group_end = quantized / shape_.quant.group, q.src_rows = full_rows;
  launch_kivi_quantize(q, stream);
}

void GpuKvCache::quantize(int64_t layer, int64_t slot, const int32_t* pos0, int64_t count, cudaStream_t stream) const {
  CTX_CHECK(shape_.quant.enabled() && slot >= 0);
  KiviQuantizeParams p = quantize_params(layer, slot);
  p.pos0 = pos0, p.count = count;
  launch_kivi_quantize(p, stream);
}

void GpuKvCache::quantize_batch(int64_t layer, const int32_t* seq_lens, int64_t seqs, cudaStream_t stream) const {
  CTX_CHECK(shape_.quant.enabled() && seqs >= 1 && seqs <= shape_.slots, "KIVI batch of ", seqs, " sequences");
  KiviQuantizeParams p = quantize_params(layer, -1);
  p.seq_lens = seq_lens, p.seqs = seqs, p.count = 1;
  launch_kivi_quantize(p, stream);
}

KiviQuantizeParams GpuKvCache::quantize_params(int64_t layer, int64_t slot) const {
  KiviQuantizeParams p;
  QkvRopeParams r;
  AttentionParams a;
  bind(layer, slot, r, a);
  p.k_cache = a.k_cache, p.v_cache = a.v_cache, p.kv = a.kivi;
  p.kv_heads = shape_.kv_heads, p.hd = shape_.head_dim, p.capacity = shape_.capacity;
  p.pool = a.pool;
  return p;
}

int64_t GpuKvCache::layer_elements(int64_t blocks) const {
  const GpuKvShape& s = shape_;
  return paged() ? s.kv_heads * blocks * s.block_size * s.head_dim : s.slots * s.kv_heads * rows() * s.head_dim;
}

int64_t GpuKvCache::code_bytes() const {
  int64_t b = 0;
  for (const KiviLayer& k : kivi_) b += k.k_codes.bytes() + k.v_codes.bytes() + k.k_params.bytes() + k.v_params.bytes();
  return b;
}

int64_t GpuKvCache::bytes() const {
  int64_t b = code_bytes();
  for (size_t l = 0; l < k_.size(); ++l) b += k_[l].bytes() + v_[l].bytes();
  return b;
}

void GpuKvCache::grow(int64_t blocks, cudaStream_t stream) {
  const GpuKvShape& s = shape_;
  // As many blocks as the allocator's rounded size of `blocks` holds (it would be granted anyway).
  const int64_t block_bytes = s.kv_heads * s.block_size * s.head_dim * 2;
  const int64_t target =
      std::min(max_pool_blocks_, int64_t(DeviceAllocator::rounded(blocks * block_bytes)) / block_bytes);
  const int64_t head_rows = s.block_size * s.head_dim;  // elements of one block of one head
  ++version_;  // even a growth that fails part-way may have moved some layers
  for (size_t l = 0; l < k_.size(); ++l) {
    const int64_t old = layer_blocks_[l];
    if (old >= target) continue;
    // Per layer: the new K and V, then the old blocks of each head copied to the start of its rows.
    DeviceBuffer<bf16> k(alloc_, layer_elements(target)), v(alloc_, layer_elements(target));
    if (old > 0)
      for (auto [dst, src] : {std::pair{&k, &k_[l]}, std::pair{&v, &v_[l]}})
        CTX_CUDA_CHECK(cudaMemcpy2DAsync(dst->get(), size_t(target * head_rows * 2), src->get(),
                                         size_t(old * head_rows * 2), size_t(old * head_rows * 2), size_t(s.kv_heads),
                                         cudaMemcpyDeviceToDevice, stream));
    // The old buffers go back to the allocator's cache; work on `stream` orders any reuse after the copy.
    k_[l] = std::move(k), v_[l] = std::move(v);
    layer_blocks_[l] = target;
  }
  // The new ids, taken after the free ones (popped from the back), in increasing order.
  std::vector<int32_t> fresh;
  for (int64_t b = target - 1; b >= pool_blocks_; --b) fresh.push_back(int32_t(b));
  free_.insert(free_.begin(), fresh.begin(), fresh.end());
  pool_blocks_ = target;
  alloc_.empty_cache();  // the old buffers back to the driver (cudaFree waits for the copies)
}

void GpuKvCache::release_all() {
  if (!paged()) return;
  free_.resize(size_t(pool_blocks_));  // the pool keeps its size (device memory stays with the engine)
  // Popped from the back: block 0 first, so a lone sequence's blocks are in order.
  for (int64_t i = 0; i < pool_blocks_; ++i) free_[size_t(i)] = int32_t(pool_blocks_ - 1 - i);
  std::fill(held_.begin(), held_.end(), 0);
}

void GpuKvCache::reserve(int64_t slot, int64_t positions, cudaStream_t stream) {
  const GpuKvShape& s = shape_;
  CTX_CHECK(slot >= 0 && slot < s.slots, "KV slot ", slot);
  if (positions > s.capacity)
    fail("GPU KV cache: ", positions, " positions exceed the capacity ", s.capacity, " of a sequence");
  if (s.quant.enabled() && s.quant.quantized_length(positions) > code_rows_)
    resize_codes(s.quant.quantized_length(positions), stream);
  if (!paged()) return;
  const int64_t need = blocks_for(positions);
  int64_t& held = held_[size_t(slot)];
  if (need <= held) return;
  const int64_t block_bytes = 2 * s.layers * s.kv_heads * s.block_size * s.head_dim * 2;  // K and V, bf16
  const int64_t missing = need - held - int64_t(free_.size());
  if (missing > 0 && pool_blocks_ + missing <= max_pool_blocks_) grow(pool_blocks_ + missing, stream);
  if (need - held > int64_t(free_.size()))
    throw CudaOutOfMemory(str_cat("GPU KV pool exhausted: sequence slot ", slot, " needs ", need - held, " more blocks of ",
                                  s.block_size, " positions, ", free_.size(), " of ", pool_blocks_,
                                  " are free and the pool may not grow beyond ", max_pool_blocks_, " blocks"),
                          (need - held) * block_bytes, int64_t(free_.size()) * block_bytes);
  int32_t* row = table_host_.data() + slot * max_blocks_;
  for (; held < need; ++held) {
    row[held] = free_.back();
    free_.pop_back();
  }
  CTX_CUDA_CHECK(cudaMemcpyAsync(table_.get() + slot * max_blocks_, row, size_t(max_blocks_) * 4,
                                 cudaMemcpyHostToDevice, stream));
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream));  // the row may change again before the copy would run
}

void GpuKvCache::shrink(int64_t slot, int64_t positions) {
  CTX_CHECK(slot >= 0 && slot < shape_.slots && positions >= 0, "KV slot ", slot, " positions ", positions);
  if (!paged()) return;
  const int64_t need = blocks_for(positions);
  int64_t& held = held_[size_t(slot)];
  // The table row past `need` goes stale on the device: nothing reads entries beyond the length.
  for (; held > need; --held) free_.push_back(table_host_[size_t(slot * max_blocks_ + held - 1)]);
}

KvLayerRows GpuKvCache::rows(int64_t layer, int64_t slot) const {
  QkvRopeParams r;
  AttentionParams a;
  bind(layer, slot, r, a);
  KvLayerRows rows;
  rows.k = r.k_cache, rows.v = r.v_cache;
  rows.pool = r.pool;
  rows.head_rows = shape_.capacity;
  rows.kv_heads = shape_.kv_heads, rows.hd = shape_.head_dim;
  return rows;
}

int64_t GpuKvCache::bytes_in_use() const {
  if (!paged()) return bytes();
  const int64_t block_bytes = 2 * shape_.layers * shape_.kv_heads * shape_.block_size * shape_.head_dim * 2;
  return block_bytes * (pool_blocks_ - int64_t(free_.size())) + code_bytes();
}

int64_t GpuKvCache::blocks_for(int64_t positions) const {
  // KIVI's ring: positions p and p + ring share a row, so the slot never needs more than its rows.
  const int64_t rows = std::min(positions, this->rows());
  return (rows + shape_.block_size - 1) / shape_.block_size;
}

void GpuKvCache::bind(int64_t layer, int64_t slot, QkvRopeParams& r, AttentionParams& a) const {
  const GpuKvShape& s = shape_;
  // One sequence in a contiguous cache: its slot's region, read as a one-slot cache.
  const int64_t slot_offset = !paged() && slot > 0 ? slot * s.kv_heads * rows() * s.head_dim : 0;
  r.k_cache = k_[size_t(layer)].get() + slot_offset, r.v_cache = v_[size_t(layer)].get() + slot_offset;
  a.k_cache = r.k_cache, a.v_cache = r.v_cache;
  r.capacity = a.capacity = s.capacity;
  r.ring = ring_;
  if (s.quant.enabled()) {
    a.kivi = kivi(layer);
    if (slot > 0) {  // the slot's (slot, KV head) rows of codes and params: [slot][kv_heads][rows]
      const int64_t heads = slot * s.kv_heads;
      const KiviHeadElems per = kivi_head_elems(kivi_rows_[size_t(layer)]);
      a.kivi.k_codes += heads * per.codes, a.kivi.v_codes += heads * per.codes;
      a.kivi.k_params += heads * per.k_params, a.kivi.v_params += heads * per.v_params;
    }
  }
  if (paged()) {
    const int32_t* table = table_.get() + (slot > 0 ? slot * max_blocks_ : 0);
    r.pool = a.pool = PagedPool{table, max_blocks_, layer_blocks_[size_t(layer)], shift_};
  }
}

}  // namespace ctx::cuda
