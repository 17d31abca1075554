#include "core/cuda/gpu_attention.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_allocator.h"
#include "core/cuda/event_timer.h"
#include "core/cuda/kernels/flash_attention.h"
#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

namespace {

FlashConfig flash_config(const GpuAttentionCase& c) {
  FlashConfig f;
  f.impl = c.kernel == AttentionKernel::kFlashWgmma ? FlashImpl::kWgmma : FlashImpl::kMmaSync;
  f.rows = c.flash_rows, f.warps = c.flash_warps;
  return f;
}

std::vector<int64_t> lengths_of(const GpuAttentionCase& c) {
  return c.batch_lengths.empty() ? std::vector<int64_t>{c.length} : c.batch_lengths;
}

void check_case(const GpuAttentionCase& c) {
  if (c.heads < 1 || c.kv_heads < 1 || c.heads % c.kv_heads != 0)
    fail("gpu_attention: heads ", c.heads, " must be a positive multiple of kv_heads ", c.kv_heads);
  if (c.head_dim < 1 || c.head_dim > 256) fail("gpu_attention: head_dim ", c.head_dim, " outside 1..256");
  if (c.batch_lengths.empty()) {
    if (c.queries < 1 || c.length < c.queries)
      fail("gpu_attention: ", c.queries, " queries need a cache of at least as many positions, not ", c.length);
  } else {
    if (c.queries != 1) fail("gpu_attention: batched decode has one query per sequence, not ", c.queries);
    for (size_t s = 0; s < c.batch_lengths.size(); ++s)
      if (c.batch_lengths[s] < 1 || c.batch_lengths[s] > INT32_MAX)
        fail("gpu_attention: batch_lengths[", s, "] = ", c.batch_lengths[s], " outside 1..2^31-1");
  }
  if (c.splits < 0) fail("gpu_attention: splits ", c.splits, " < 0");
  if (c.kernel != AttentionKernel::kSplitKv) {
    if (c.head_dim != 64 && c.head_dim != 128) fail("gpu_attention: the flash kernel needs head_dim 64 or 128, not ", c.head_dim);
    if (c.block_size > 0 || !c.batch_lengths.empty())
      fail("gpu_attention: the flash kernel reads one contiguous sequence (no block_size, no batch_lengths)");
    resolve_flash_config(flash_config(c), c.head_dim);  // an unknown block shape is an error naming it
  }
  if (c.block_size < 0 || c.block_size > 1024 || (c.block_size & (c.block_size - 1)) != 0)
    fail("gpu_attention: block_size ", c.block_size, " must be 0 (contiguous) or a power of two <= 1024");
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw Unsupported("gpu_attention: no CUDA device is available");
  }
  if (c.kernel == AttentionKernel::kFlashWgmma && !flash_prefill_wgmma_available())
    throw Unsupported("gpu_attention: the wgmma flash kernel needs a compute capability 9.0 GPU");
}

// Where the row of (sequence, KV head, position) lives in the device K (and V) buffer.
struct CacheLayout {
  std::vector<int64_t> lengths;
  int64_t kv_heads = 0, hd = 0;
  int64_t region = 0;                                  // contiguous: positions per sequence
  int64_t block_size = 0, pool_blocks = 0, max_blocks = 0;  // paged
  int shift = 0;
  std::vector<int32_t> table;                          // paged: [sequences][max_blocks]
  int64_t elements = 0;                                // bf16 elements of K (and of V)

  CacheLayout(const GpuAttentionCase& c) : lengths(lengths_of(c)), kv_heads(c.kv_heads), hd(c.head_dim) {
    const int64_t seqs = int64_t(lengths.size()), longest = *std::max_element(lengths.begin(), lengths.end());
    block_size = c.block_size;
    if (block_size == 0) {
      region = longest;
      elements = seqs * kv_heads * region * hd;
      return;
    }
    while ((int64_t(1) << shift) < block_size) ++shift;
    max_blocks = (longest + block_size - 1) / block_size;
    for (int64_t len : lengths) pool_blocks += (len + block_size - 1) / block_size;
    std::vector<int32_t> ids(static_cast<size_t>(pool_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
    table.assign(size_t(seqs * max_blocks), 0);  // entries past a sequence's blocks are never read
    size_t next = 0;
    for (int64_t s = 0; s < seqs; ++s)
      for (int64_t b = 0; b < (lengths[size_t(s)] + block_size - 1) / block_size; ++b)
        table[size_t(s * max_blocks + b)] = ids[next++];
    elements = kv_heads * pool_blocks * block_size * hd;
  }

  int64_t row(int64_t s, int64_t kvh, int64_t pos) const {
    if (block_size == 0) return ((s * kv_heads + kvh) * region + pos) * hd;
    const int64_t b = table[size_t(s * max_blocks + pos / block_size)];
    return ((kvh * pool_blocks + b) * block_size + pos % block_size) * hd;
  }
  int64_t cached_positions() const { return std::accumulate(lengths.begin(), lengths.end(), int64_t(0)); }
};

// Host float rows ([sum of lengths, kv_heads * hd], sequences one after another) -> device bf16 in
// the layout.
void upload_cache(std::span<const float> x, const CacheLayout& l, bf16* dst) {
  std::vector<float> t(size_t(l.elements), 0.f);
  int64_t first = 0;
  for (size_t s = 0; s < l.lengths.size(); ++s) {
    for (int64_t p = 0; p < l.lengths[s]; ++p)
      for (int64_t h = 0; h < l.kv_heads; ++h)
        std::copy_n(x.data() + ((first + p) * l.kv_heads + h) * l.hd, l.hd, t.data() + l.row(int64_t(s), h, p));
    first += l.lengths[s];
  }
  std::vector<uint16_t> b(t.size());
  convert_f32_to_bf16(t.data(), b.data(), t.size());
  CTX_CUDA_CHECK(cudaMemcpy(dst, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
}

// The device side of one case: cache (cache_copies copies of the layout), queries, positions, block
// table and workspaces.
struct DeviceCase {
  CacheLayout layout;
  int64_t rows;  // query rows
  DeviceBuffer<bf16> q, k, v, out;
  DeviceBuffer<int32_t> pos0, seq_lens, table;
  DeviceBuffer<float> partial;
  DeviceBuffer<int> counters;
  AttentionParams params;

  DeviceCase(DeviceAllocator& alloc, const GpuAttentionCase& c, int64_t cache_copies)
      : layout(c),
        rows(c.batch_lengths.empty() ? c.queries : int64_t(c.batch_lengths.size())),
        q(alloc, rows * c.heads * c.head_dim),
        k(alloc, cache_copies * layout.elements),
        v(alloc, cache_copies * layout.elements),
        out(alloc, rows * c.heads * c.head_dim),
        pos0(alloc, 1) {
    const bool batched = !c.batch_lengths.empty();
    const int64_t longest = *std::max_element(layout.lengths.begin(), layout.lengths.end());
    const int splits = c.splits > 0    ? c.splits
                       : batched       ? default_batched_splits(longest, rows, c.heads)
                                       : default_attention_splits(c.length, c.queries);
    partial = DeviceBuffer<float>(alloc, rows * c.heads * splits * (c.head_dim + 2));
    counters = DeviceBuffer<int>(alloc, rows * c.heads);
    CTX_CUDA_CHECK(cudaMemset(counters.get(), 0, counters.bytes()));
    const int32_t first = int32_t(c.length - c.queries);
    CTX_CUDA_CHECK(cudaMemcpy(pos0.get(), &first, 4, cudaMemcpyHostToDevice));
    AttentionParams& p = params;
    p.q = q.get(), p.k_cache = k.get(), p.v_cache = v.get(), p.pos0 = pos0.get();
    p.n = rows, p.heads = c.heads, p.kv_heads = c.kv_heads, p.hd = c.head_dim, p.capacity = layout.region;
    if (batched) {
      std::vector<int32_t> lens(layout.lengths.begin(), layout.lengths.end());
      seq_lens = DeviceBuffer<int32_t>(alloc, rows);
      CTX_CUDA_CHECK(cudaMemcpy(seq_lens.get(), lens.data(), lens.size() * 4, cudaMemcpyHostToDevice));
      p.seq_lens = seq_lens.get();
    }
    if (layout.block_size > 0) {
      table = DeviceBuffer<int32_t>(alloc, int64_t(layout.table.size()));
      CTX_CUDA_CHECK(cudaMemcpy(table.get(), layout.table.data(), layout.table.size() * 4, cudaMemcpyHostToDevice));
      p.block_table = table.get(), p.max_blocks = layout.max_blocks, p.pool_blocks = layout.pool_blocks;
      p.block_shift = layout.shift;
    }
    p.window = c.window;
    p.scale = c.scale > 0 ? c.scale : float(1.0 / std::sqrt(double(c.head_dim)));
    p.splits = splits, p.partial = partial.get(), p.counters = counters.get(), p.out = out.get();
    p.vectorized = c.vectorized;
    p.max_grouped_heads = c.group_heads;
    p.flex = c.flex;
    p.prefetch = c.prefetch;
  }
};

void launch_case(const GpuAttentionCase& c, const AttentionParams& p) {
  if (c.kernel == AttentionKernel::kSplitKv)
    launch_attention(p, nullptr);
  else
    launch_flash_prefill(p, nullptr, flash_config(c));
}

}  // namespace

std::vector<float> gpu_attention(const GpuAttentionCase& c, std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v) {
  check_case(c);
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, 1);
  const size_t q_size = size_t(d.rows * c.heads * c.head_dim);
  const size_t kv_size = size_t(d.layout.cached_positions() * c.kv_heads * c.head_dim);
  if (q.size() != q_size || k.size() != kv_size || v.size() != kv_size)
    fail("gpu_attention: tensor sizes q ", q.size(), ", k ", k.size(), ", v ", v.size(), " do not match the case (", q_size,
         ", ", kv_size, ", ", kv_size, ")");
  std::vector<uint16_t> qb(q_size);
  convert_f32_to_bf16(q.data(), qb.data(), q_size);
  CTX_CUDA_CHECK(cudaMemcpy(d.q.get(), qb.data(), q_size * 2, cudaMemcpyHostToDevice));
  upload_cache(k, d.layout, d.k.get());
  upload_cache(v, d.layout, d.v.get());
  launch_case(c, d.params);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint16_t> ob(q_size);
  CTX_CUDA_CHECK(cudaMemcpy(ob.data(), d.out.get(), q_size * 2, cudaMemcpyDeviceToHost));
  std::vector<float> out(q_size);
  convert_to_f32(DType::BF16, ob.data(), out.data(), q_size);
  return out;
}

AttentionTiming measure_decode_attention(const GpuAttentionCase& c0, int reps) {
  GpuAttentionCase c = c0;
  c.queries = 1;
  check_case(c);
  const CacheLayout layout(c);
  AttentionTiming t;
  t.kv_bytes = 2 * layout.cached_positions() * c.kv_heads * c.head_dim * 2;  // K and V, bf16
  t.reserved_bytes = 2 * layout.elements * 2;
  const int64_t copies = copies_beyond_l2(t.reserved_bytes, 1);
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, copies);
  launch_fill_random(d.q.get(), d.q.size(), 1, nullptr);
  launch_fill_random(d.k.get(), d.k.size(), 2, nullptr);
  launch_fill_random(d.v.get(), d.v.size(), 3, nullptr);
  constexpr int kLaunches = 20;
  int64_t next = 0;
  AttentionParams p = d.params;
  const double ms = median_ms(reps, [&] {
    for (int i = 0; i < kLaunches; ++i) {
      const int64_t at = (next++ % copies) * layout.elements;
      p.k_cache = d.k.get() + at, p.v_cache = d.v.get() + at;
      launch_attention(p, nullptr);
    }
  });
  t.splits = p.splits;
  t.us = ms * 1e3 / kLaunches;
  t.bytes_per_s = double(t.kv_bytes) / (t.us * 1e-6);
  return t;
}

PrefillTiming measure_prefill_attention(const GpuAttentionCase& c, int reps, int launches) {
  check_case(c);
  if (!c.batch_lengths.empty() || c.block_size > 0) fail("measure_prefill_attention: one contiguous sequence only");
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, 1);
  launch_fill_random(d.q.get(), d.q.size(), 1, nullptr);
  launch_fill_random(d.k.get(), d.k.size(), 2, nullptr);
  launch_fill_random(d.v.get(), d.v.size(), 3, nullptr);
  const double ms = median_ms(reps, [&] {
    for (int i = 0; i < launches; ++i) launch_case(c, d.params);
  });
  PrefillTiming t;
  t.us = ms * 1e3 / launches;
  t.flops = prefill_attention_flops(c);
  t.tflops = t.flops / (t.us * 1e-6) / 1e12;
  return t;
}

}  // namespace ctx::cuda
