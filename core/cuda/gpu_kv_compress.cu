// GpuKvCompressor (gpu_kv_compressor.h) and the test entries gpu_kv_compress and gpu_kv_attention_votes
// (gpu_kv_compress.h).
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

GpuKvCompressor::GpuKvCompressor(DeviceAllocator& alloc, const GpuKvPolicy& policy, const GpuKvScoreShape& scores)
    : alloc_(alloc), policy_(policy) {
  if (policy.needs_attention()) scorer_ = std::make_unique<GpuKvScorer>(alloc, policy, scores);
}

void GpuKvCompressor::compress(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count,
                               int64_t n_new, cudaStream_t stream, std::vector<int32_t>* kept) {
  CTX_CHECK(count >= 1 && count < length, "GPU KV compression: keep ", count, " of ", length);
  const int64_t heads = rows.kv_heads;
  // scored_compressor.cc: the last `protect` entries survive, the top `pick` of the others join them.
  const int64_t protect = policy_.protect(count);
  const int64_t pick = count - protect, pool = length - protect;
  DeviceBuffer<float> scores(alloc_, heads * length);
  if (scorer_)
    scorer_->scores(layer, length, n_new, scores.get(), stream);
  else
    launch_kv_scores(rows, length, score_params(policy_, layer, position), scores.get(), stream);
  DeviceBuffer<uint64_t> keys(alloc_, std::max<int64_t>(1, heads * pool)), sorted(alloc_, std::max<int64_t>(1, heads * pool));
  if (pick > 0) {
    launch_kv_sort_keys(scores.get(), heads, length, pool, keys.get(), stream);
    size_t temp_bytes = 0;
    CTX_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(nullptr, temp_bytes, keys.get(), sorted.get(), int(heads * pool), 0,
                                                  64, stream));
    DeviceBuffer<char> temp(alloc_, int64_t(std::max<size_t>(temp_bytes, 1)));
    CTX_CUDA_CHECK(cub::DeviceRadixSort::SortKeys(temp.get(), temp_bytes, keys.get(), sorted.get(), int(heads * pool),
                                                  0, 64, stream));
  }
  DeviceBuffer<uint8_t> flags(alloc_, heads * length);
  launch_kv_mark_kept(sorted.get(), heads, length, pool, pick, flags.get(), stream);
  DeviceBuffer<int32_t> idx(alloc_, heads * count);
  launch_kv_flags_to_indices(flags.get(), heads, length, count, idx.get(), stream);
  DeviceBuffer<bf16> tmp_k(alloc_, heads * count * rows.hd), tmp_v(alloc_, heads * count * rows.hd);
  launch_kv_compact(rows, idx.get(), count, tmp_k.get(), tmp_v.get(), stream);
  if (scorer_) scorer_->compacted(layer, idx.get(), count, length, scores.get(), stream);  // h2o: votes move too
  if (kept) {
    kept->resize(size_t(heads * count));
    CTX_CUDA_CHECK(cudaMemcpyAsync(kept->data(), idx.get(), size_t(idx.bytes()), cudaMemcpyDeviceToHost, stream));
  }
  // The scratch returns to the caching allocator when this returns: wait until the kernels are done
  // with it (the allocator's blocks are not stream-ordered).
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream));
}

namespace {

// One layer's K/V as the engine holds it, from host rows [kv_head][length][hd]: entry j of head h at
// rows.offset(h, j), contiguous or paged through a reversed block table.
struct TestLayer {
  TestLayer(DeviceAllocator& alloc, int64_t kv_heads, int64_t length, int64_t hd, int64_t block_size,
            std::span<const float> k, std::span<const float> v) {
    rows.kv_heads = kv_heads, rows.hd = hd;
    int64_t blocks = 0;
    if (block_size > 0) {
      blocks = (length + block_size - 1) / block_size;
      table.resize(size_t(blocks));
      for (int64_t b = 0; b < blocks; ++b) table[size_t(b)] = int32_t(blocks - 1 - b);  // reversed
      while ((int64_t(1) << rows.block_shift) < block_size) ++rows.block_shift;
      CTX_CHECK((int64_t(1) << rows.block_shift) == block_size, "block_size must be a power of two");
    }
    rows.head_rows = block_size > 0 ? blocks * block_size : length;
    std::vector<float> k_store(size_t(kv_heads * rows.head_rows * hd), 0.f), v_store(k_store.size(), 0.f);
    host_rows = rows;
    host_rows.table = table.empty() ? nullptr : table.data();
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
    rows.k = dk.get(), rows.v = dv.get(), rows.table = blocks ? dtable.get() : nullptr;
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
  GpuKvCompressResult r;
  compressor.compress(layer.rows, c.layer, c.length, c.position, c.count, std::max<int64_t>(1, c.n_new), nullptr, &r.kept);
  std::vector<bf16> hk(size_t(layer.dk.size())), hv(hk.size());
  CTX_CUDA_CHECK(cudaMemcpy(hk.data(), layer.dk.get(), size_t(layer.dk.bytes()), cudaMemcpyDeviceToHost));
  CTX_CUDA_CHECK(cudaMemcpy(hv.data(), layer.dv.get(), size_t(layer.dv.bytes()), cudaMemcpyDeviceToHost));
  r.k.resize(size_t(c.kv_heads * c.count * c.hd)), r.v.resize(r.k.size());
  for (int64_t h = 0; h < c.kv_heads; ++h)
    for (int64_t i = 0; i < c.count; ++i)
      for (int64_t e = 0; e < c.hd; ++e) {
        const size_t to = size_t((h * c.count + i) * c.hd + e);
        r.k[to] = __bfloat162float(hk[size_t(layer.host_rows.offset(h, i) + e)]);
        r.v[to] = __bfloat162float(hv[size_t(layer.host_rows.offset(h, i) + e)]);
      }
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
