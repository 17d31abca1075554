// GpuKvCompressor (gpu_kv_compressor.h) and the test entries gpu_kv_compress, gpu_kv_keep_all_but_one and
// gpu_kv_attention_votes (gpu_kv_compress.h).
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <numeric>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/gpu_kv_compress.h"
#include "core/cuda/gpu_kv_compressor.h"
#include "core/cuda/kernels/kv_score_kernels.h"
#include "core/kv/random_score.h"

namespace ctx::cuda {

namespace {

KvScoreParams score_params(const GpuKvPolicy& p, int64_t layer, int64_t position) {
  KvScoreParams s;
  switch (p.method) {
    case GpuKvMethod::kL2Norm: s.kind = p.keep_low ? KvScoreKind::kL2NormLow : KvScoreKind::kL2NormHigh; break;
    case GpuKvMethod::kStreaming: s.kind = KvScoreKind::kStreaming, s.n_sink = p.n_sink; break;
    case GpuKvMethod::kRandom: s.kind = KvScoreKind::kRandom, s.hash_base = kv_random_base(p.seed, layer, position); break;
    default: CTX_CHECK(false, "GPU KV compression: no key/position score for this policy");
  }
  return s;
}

}  // namespace

GpuKvCompressor::GpuKvCompressor(DeviceAllocator& alloc, const GpuKvPolicy& policy, const GpuKvScoreShape& shape)
    : alloc_(alloc), policy_(policy), shape_(shape) {
  CTX_CHECK(shape.layers >= 1 && shape.kv_heads >= 1 && shape.capacity >= 1 && shape.capacity < (int64_t(1) << 31),
            "GPU KV compression: layers ", shape.layers, ", kv_heads ", shape.kv_heads, ", capacity ", shape.capacity);
  if (policy.needs_attention()) scorer_ = std::make_unique<GpuKvScorer>(alloc, policy, shape);
  positions_ = DeviceBuffer<int32_t>(alloc, shape.layers * shape.kv_heads * shape.capacity);
  evicted_ = DeviceBuffer<int32_t>(alloc, shape.kv_heads);
  reset(nullptr);
  CTX_CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

void GpuKvCompressor::reset(cudaStream_t stream) {
  if (scorer_) scorer_->reset(stream);
  origins_.assign(size_t(shape_.layers), Origin{});  // known 0, from 0: entry j at position j
}

template <class T>
T* GpuKvCompressor::scratch(DeviceBuffer<T>& buffer, int64_t n, cudaStream_t stream) {
  n = std::max<int64_t>(1, n);
  if (buffer.size() < n) {
    CTX_CUDA_CHECK(cudaStreamSynchronize(stream));  // enqueued work may still use the old buffer
    buffer = DeviceBuffer<T>();
    buffer = DeviceBuffer<T>(alloc_, n);
  }
  return buffer.get();
}

KvEntryPositions GpuKvCompressor::entry_positions(int64_t layer) const {
  KvEntryPositions p;
  p.positions = positions_.get() + layer * shape_.kv_heads * shape_.capacity;
  p.stride = shape_.capacity;
  p.known = origins_[size_t(layer)].known, p.from = origins_[size_t(layer)].from;
  return p;
}

void GpuKvCompressor::compress(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count,
                               int64_t n_new, int32_t* device_length, cudaStream_t stream) {
  CTX_CHECK(count >= 1 && count < length && length <= shape_.capacity && layer >= 0 && layer < shape_.layers &&
                rows.kv_heads == shape_.kv_heads,
            "GPU KV compression: keep ", count, " of ", length, " (capacity ", shape_.capacity, ") in layer ", layer);
  float* scores = scratch(scores_, rows.kv_heads * shape_.capacity, stream);
  if (scorer_)
    scorer_->scores(layer, length, n_new, scores, stream);
  else
    launch_kv_scores(rows, length, score_params(policy_, layer, position), scores, stream);
  keep(rows, layer, length, position, count, scores, true, device_length, stream);
}

void GpuKvCompressor::keep(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count,
                           const float* scores, bool one_eviction, int32_t* device_length, cudaStream_t stream) {
  const int64_t heads = rows.kv_heads;
  // scored_compressor.cc: the last `protect` entries survive, the top `pick` of the others join them.
  const int64_t protect = policy_.protect(count);
  const int64_t pick = count - protect, pool = length - protect;
  KvEntryPositions pos = entry_positions(layer);
  float* votes = scorer_ ? scorer_->moving_votes(layer) : nullptr;
  if (one_eviction && count == length - 1 && rows.hd % 8 == 0) {
    KvEvictOneParams p;
    p.rows = rows, p.length = length, p.pool = pool, p.scores = scores;
    p.votes = votes, p.votes_stride = shape_.capacity;
    p.pos = pos, p.device_length = device_length, p.evicted = evicted_.get();
    p.edges = scratch(edges_, kv_evict_one_workspace(heads, shape_.capacity, rows.hd), stream);
    launch_kv_evict_one(p, stream);
    origins_[size_t(layer)] = Origin{count, position};
    return;
  }
  uint64_t* sorted = scratch(sorted_, heads * pool, stream);
  if (pick > 0) {
    uint64_t* keys = scratch(keys_, heads * pool, stream);
    launch_kv_sort_keys(scores, heads, length, pool, keys, stream);
    size_t temp_bytes = 0;
    CTX_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(nullptr, temp_bytes, keys, sorted, int(heads * pool), 0, 64, stream));
    char* temp = scratch(sort_temp_, int64_t(temp_bytes), stream);
    CTX_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(temp, temp_bytes, keys, sorted, int(heads * pool), 0, 64, stream));
  }
  uint8_t* flags = scratch(flags_, heads * length, stream);
  launch_kv_mark_kept(sorted, heads, length, pool, pick, flags, stream);
  int32_t* idx = scratch(kept_, heads * count, stream);
  launch_kv_flags_to_indices(flags, heads, length, count, idx, stream);
  bf16* tmp_k = scratch(tmp_k_, heads * count * rows.hd, stream);
  bf16* tmp_v = scratch(tmp_v_, heads * count * rows.hd, stream);
  launch_kv_compact(rows, idx, count, tmp_k, tmp_v, stream);
  // h2o: the votes move too (scores_ is free by now: the scratch of the move).
  float* tmp = scratch(scores_, heads * length, stream);
  if (votes) launch_kv_compact_votes(votes, shape_.capacity, heads, idx, count, length, tmp, stream);
  launch_kv_compact_positions(pos, heads, idx, count, reinterpret_cast<int32_t*>(tmp), device_length, stream);
  origins_[size_t(layer)] = Origin{count, position};
}

std::vector<std::vector<int64_t>> GpuKvCompressor::positions(int64_t layer, int64_t length, cudaStream_t stream) const {
  CTX_CHECK(layer >= 0 && layer < shape_.layers && length >= 0 && length <= shape_.capacity, "KV positions: layer ",
            layer, ", length ", length);
  const KvEntryPositions p = entry_positions(layer);
  std::vector<int32_t> stored(size_t(shape_.kv_heads * shape_.capacity));
  CTX_CUDA_CHECK(cudaMemcpyAsync(stored.data(), p.positions, stored.size() * 4, cudaMemcpyDeviceToHost, stream));
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<std::vector<int64_t>> out(size_t(shape_.kv_heads), std::vector<int64_t>(size_t(length)));
  for (int64_t h = 0; h < shape_.kv_heads; ++h)
    for (int64_t j = 0; j < length; ++j)
      out[size_t(h)][size_t(j)] = j < p.known ? stored[size_t(h * p.stride + j)] : p.from + j - p.known;
  return out;
}

namespace {

// One layer's K/V as the engine holds it, from host rows [kv_head][length][hd]: entry j of head h at
// rows.offset(h, j), contiguous or paged through a reversed block table.
struct TestLayer {
  TestLayer(DeviceAllocator& alloc, int64_t kv_heads, int64_t length, int64_t hd, int64_t block_size,
            std::span<const float> k, std::span<const float> v) {
    rows.kv_heads = kv_heads, rows.hd = hd;
    int64_t blocks = 0;
    int shift = 0;
    if (block_size > 0) {
      blocks = (length + block_size - 1) / block_size;
      table.resize(size_t(blocks));
      for (int64_t b = 0; b < blocks; ++b) table[size_t(b)] = int32_t(blocks - 1 - b);  // reversed
      while ((int64_t(1) << shift) < block_size) ++shift;
      CTX_CHECK((int64_t(1) << shift) == block_size, "block_size must be a power of two");
    }
    rows.head_rows = length;
    const int64_t head_rows = block_size > 0 ? blocks * block_size : length;
    std::vector<float> k_store(size_t(kv_heads * head_rows * hd), 0.f), v_store(k_store.size(), 0.f);
    host_rows = rows;
    if (blocks) host_rows.pool = PagedPool{table.data(), blocks, blocks, shift};
    for (int64_t h = 0; h < kv_heads; ++h)
      for (int64_t j = 0; j < length; ++j) {
        const int64_t at = host_rows.offset(h, j), from = (h * length + j) * hd;
        std::copy_n(k.data() + from, hd, k_store.data() + at);
        if (!v.empty()) std::copy_n(v.data() + from, hd, v_store.data() + at);
      }
    dk = upload_bf16(alloc, k_store.data(), int64_t(k_store.size()));
    dv = upload_bf16(alloc, v_store.data(), int64_t(v_store.size()));
    dtable = DeviceBuffer<int32_t>(alloc, std::max<int64_t>(1, blocks));
    if (blocks) CTX_CUDA_CHECK(cudaMemcpy(dtable.get(), table.data(), size_t(blocks) * 4, cudaMemcpyHostToDevice));
    rows.k = dk.get(), rows.v = dv.get();
    if (blocks) rows.pool = PagedPool{dtable.get(), blocks, blocks, shift};
  }
  // The kept entries (the compressor's positions: entry j started at position j) and their K/V rows.
  GpuKvCompressResult result(const GpuKvCompressor& compressor, int64_t layer, int64_t count) const {
    GpuKvCompressResult r;
    for (const auto& head : compressor.positions(layer, count, nullptr))
      for (int64_t p : head) r.kept.push_back(int32_t(p));
    std::vector<bf16> hk(size_t(dk.size())), hv(hk.size());
    CTX_CUDA_CHECK(cudaMemcpy(hk.data(), dk.get(), size_t(dk.bytes()), cudaMemcpyDeviceToHost));
    CTX_CUDA_CHECK(cudaMemcpy(hv.data(), dv.get(), size_t(dv.bytes()), cudaMemcpyDeviceToHost));
    r.k.resize(size_t(rows.kv_heads * count * rows.hd)), r.v.resize(r.k.size());
    for (int64_t h = 0; h < rows.kv_heads; ++h)
      for (int64_t i = 0; i < count; ++i)
        for (int64_t e = 0; e < rows.hd; ++e) {
          const size_t to = size_t((h * count + i) * rows.hd + e);
          r.k[to] = __bfloat162float(hk[size_t(host_rows.offset(h, i) + e)]);
          r.v[to] = __bfloat162float(hv[size_t(host_rows.offset(h, i) + e)]);
        }
    return r;
  }

  KvLayerRows rows, host_rows;  // device pointers; the same layout with the host's table
  std::vector<int32_t> table;
  DeviceBuffer<bf16> dk, dv;
  DeviceBuffer<int32_t> dtable;
};

}  // namespace

GpuKvCompressResult gpu_kv_compress(const GpuKvCompressCase& c, std::span<const float> k, std::span<const float> v,
                                    std::span<const float> q) {
  const int64_t per_head = c.length * c.hd;
  if (int64_t(k.size()) != c.kv_heads * per_head || int64_t(v.size()) != c.kv_heads * per_head)
    fail("gpu_kv_compress: K/V hold ", k.size(), "/", v.size(), " floats, expected ", c.kv_heads * per_head);
  if (c.count < 1 || c.count >= c.length) fail("gpu_kv_compress: count ", c.count, " must be in 1..length-1");
  const bool attention = c.policy.needs_attention();
  if (attention && (c.n_new < 1 || c.n_new > c.length || c.heads < c.kv_heads || int64_t(q.size()) != c.n_new * c.heads * c.hd))
    fail("gpu_kv_compress: ", q.size(), " query floats for ", c.n_new, " rows of ", c.heads, " heads of ", c.hd);
  DeviceAllocator alloc;
  TestLayer layer(alloc, c.kv_heads, c.length, c.hd, c.block_size, k, v);
  GpuKvScoreShape shape;
  shape.layers = c.layer + 1, shape.heads = c.heads, shape.kv_heads = c.kv_heads, shape.head_dim = c.hd;
  shape.capacity = c.length, shape.max_rows = std::max<int64_t>(1, c.n_new), shape.scale = c.scale;
  GpuKvCompressor compressor(alloc, c.policy, shape);
  if (attention) {
    DeviceBuffer<bf16> dq = upload_bf16(alloc, q.data(), int64_t(q.size()));
    const int32_t before = int32_t(c.length - c.n_new);
    DeviceBuffer<int32_t> dbefore(alloc, 1);
    CTX_CUDA_CHECK(cudaMemcpy(dbefore.get(), &before, 4, cudaMemcpyHostToDevice));
    compressor.observe(c.layer, layer.rows, dq.get(), c.n_new, dbefore.get(), c.length, nullptr);
    CTX_CUDA_CHECK(cudaDeviceSynchronize());
  }
  compressor.compress(layer.rows, c.layer, c.length, c.position, c.count, std::max<int64_t>(1, c.n_new), nullptr,
                      nullptr);
  return layer.result(compressor, c.layer, c.count);
}

GpuKvCompressResult gpu_kv_keep_all_but_one(const GpuKvEvictCase& c, std::span<const float> scores,
                                            std::span<const float> k, std::span<const float> v) {
  const int64_t per_head = c.length * c.hd;
  if (c.length < 2 || c.kv_heads < 1 || c.hd < 1 || c.protect < 0 || c.protect >= c.length ||
      int64_t(scores.size()) != c.kv_heads * c.length || int64_t(k.size()) != c.kv_heads * per_head ||
      int64_t(v.size()) != c.kv_heads * per_head)
    fail("gpu_kv_keep_all_but_one: ", c.kv_heads, " heads of ", c.length, " entries of ", c.hd, ", protect ", c.protect,
         ", ", scores.size(), " scores, ", k.size(), "/", v.size(), " K/V floats");
  DeviceAllocator alloc;
  TestLayer layer(alloc, c.kv_heads, c.length, c.hd, c.block_size, k, v);
  GpuKvPolicy policy;  // a policy without attention: protect_recent is all the selection reads of it
  policy.method = GpuKvMethod::kStreaming, policy.budget.protect_recent = c.protect;
  GpuKvScoreShape shape;
  shape.layers = 1, shape.kv_heads = c.kv_heads, shape.capacity = c.length;
  GpuKvCompressor compressor(alloc, policy, shape);
  DeviceBuffer<float> dscores = upload_f32(alloc, scores.data(), int64_t(scores.size()));
  DeviceBuffer<int32_t> dlength(alloc, 1);
  const int32_t length = int32_t(c.length);
  CTX_CUDA_CHECK(cudaMemcpy(dlength.get(), &length, 4, cudaMemcpyHostToDevice));
  compressor.keep(layer.rows, 0, c.length, c.length, c.length - 1, dscores.get(), c.one_eviction, dlength.get(),
                  nullptr);
  GpuKvCompressResult r = layer.result(compressor, 0, c.length - 1);
  int32_t after = 0;
  CTX_CUDA_CHECK(cudaMemcpy(&after, dlength.get(), 4, cudaMemcpyDeviceToHost));
  r.device_length = after;
  return r;
}

std::vector<float> gpu_kv_attention_votes(const GpuKvVotesCase& c, std::span<const float> q, std::span<const float> k) {
  const int64_t rows = c.row_end - c.row_begin;
  if (rows < 1 || c.row_begin < 0 || c.row_end > c.n_new || c.n_new > c.length || c.kv_heads < 1 ||
      c.heads % c.kv_heads != 0 || int64_t(q.size()) != rows * c.heads * c.hd ||
      int64_t(k.size()) != c.kv_heads * c.length * c.hd)
    fail("gpu_kv_attention_votes: rows ", c.row_begin, "..", c.row_end, " of ", c.n_new, ", length ", c.length,
         ", heads ", c.heads, "/", c.kv_heads, ", ", q.size(), " query and ", k.size(), " key floats");
  const int64_t bound = std::max(c.length, c.length_bound);
  DeviceAllocator alloc;
  TestLayer layer(alloc, c.kv_heads, c.length, c.hd, c.block_size, k, {});
  DeviceBuffer<bf16> dq = upload_bf16(alloc, q.data(), int64_t(q.size()));
  const int32_t before = int32_t(c.length - c.n_new);
  DeviceBuffer<int32_t> dbefore(alloc, 1);
  CTX_CUDA_CHECK(cudaMemcpy(dbefore.get(), &before, 4, cudaMemcpyHostToDevice));
  DeviceBuffer<float> votes(alloc, c.kv_heads * c.length);
  DeviceBuffer<float2> stats(alloc, kv_attention_score_workspace(rows, c.heads, c.kv_heads));
  KvAttentionScoreParams p;
  p.q = dq.get(), p.kv = layer.rows, p.before = dbefore.get();
  p.n_new = c.n_new, p.row_begin = c.row_begin, p.rows = rows, p.heads = c.heads, p.scale = c.scale;
  p.votes = votes.get(), p.votes_stride = c.length, p.stats = stats.get(), p.length_bound = bound;
  launch_kv_attention_votes(p, nullptr);
  std::vector<float> out(size_t(votes.size()));
  CTX_CUDA_CHECK(cudaMemcpy(out.data(), votes.get(), size_t(votes.bytes()), cudaMemcpyDeviceToHost));
  return out;
}

}  // namespace ctx::cuda
