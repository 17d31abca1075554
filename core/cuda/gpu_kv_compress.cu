// GpuKvCompressor (gpu_kv_compressor.h) and the test entry gpu_kv_compress (gpu_kv_compress.h).
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <numeric>

#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/gpu_kv_compress.h"
#include "core/cuda/gpu_kv_compressor.h"
#include "core/kv/random_score.h"

namespace ctx::cuda {

namespace {

KvScoreParams score_params(const GpuKvPolicy& p, int64_t layer, int64_t position) {
  KvScoreParams s;
  switch (p.method) {
    case GpuKvMethod::kL2Norm: s.kind = p.keep_low ? KvScoreKind::kL2NormLow : KvScoreKind::kL2NormHigh; break;
    case GpuKvMethod::kStreaming: s.kind = KvScoreKind::kStreaming, s.n_sink = p.n_sink; break;
    case GpuKvMethod::kRandom: s.kind = KvScoreKind::kRandom, s.hash_base = kv_random_base(p.seed, layer, position); break;
    case GpuKvMethod::kNone: CTX_CHECK(false, "GPU KV compression without a policy");
  }
  return s;
}

}  // namespace

void GpuKvCompressor::compress(const KvLayerRows& rows, int64_t layer, int64_t length, int64_t position, int64_t count,
                               cudaStream_t stream, std::vector<int32_t>* kept) {
  CTX_CHECK(count >= 1 && count < length, "GPU KV compression: keep ", count, " of ", length);
  const int64_t heads = rows.kv_heads;
  // scored_compressor.cc: the last `protect` entries survive, the top `pick` of the others join them.
  const int64_t protect = std::min(count, policy_.budget.protect_recent);
  const int64_t pick = count - protect, pool = length - protect;
  DeviceBuffer<float> scores(alloc_, heads * length);
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
  if (kept) {
    kept->resize(size_t(heads * count));
    CTX_CUDA_CHECK(cudaMemcpyAsync(kept->data(), idx.get(), size_t(idx.bytes()), cudaMemcpyDeviceToHost, stream));
  }
  // The scratch returns to the caching allocator when this returns: wait until the kernels are done
  // with it (the allocator's blocks are not stream-ordered).
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream));
}

GpuKvCompressResult gpu_kv_compress(const GpuKvCompressCase& c, std::span<const float> k, std::span<const float> v) {
  const int64_t per_head = c.length * c.hd;
  if (int64_t(k.size()) != c.kv_heads * per_head || int64_t(v.size()) != c.kv_heads * per_head)
    fail("gpu_kv_compress: K/V hold ", k.size(), "/", v.size(), " floats, expected ", c.kv_heads * per_head);
  if (c.count < 1 || c.count >= c.length) fail("gpu_kv_compress: count ", c.count, " must be in 1..length-1");
  DeviceAllocator alloc;
  KvLayerRows rows;
  rows.kv_heads = c.kv_heads, rows.hd = c.hd;
  std::vector<int32_t> table;
  int64_t blocks = 0;
  if (c.block_size > 0) {
    blocks = (c.length + c.block_size - 1) / c.block_size;
    table.resize(size_t(blocks));
    for (int64_t b = 0; b < blocks; ++b) table[size_t(b)] = int32_t(blocks - 1 - b);  // reversed
    while ((int64_t(1) << rows.block_shift) < c.block_size) ++rows.block_shift;
    CTX_CHECK((int64_t(1) << rows.block_shift) == c.block_size, "block_size must be a power of two");
  }
  rows.head_rows = c.block_size > 0 ? blocks * c.block_size : c.length;
  // The layer as the engine holds it: entry j of head h at rows.offset(h, j).
  std::vector<float> k_store(size_t(c.kv_heads * rows.head_rows * c.hd), 0.f), v_store(k_store.size(), 0.f);
  KvLayerRows host_rows = rows;
  host_rows.table = table.empty() ? nullptr : table.data();
  for (int64_t h = 0; h < c.kv_heads; ++h)
    for (int64_t j = 0; j < c.length; ++j) {
      const int64_t at = host_rows.offset(h, j), from = (h * c.length + j) * c.hd;
      std::copy_n(k.data() + from, c.hd, k_store.data() + at);
      std::copy_n(v.data() + from, c.hd, v_store.data() + at);
    }
  DeviceBuffer<bf16> dk = upload_bf16(alloc, k_store.data(), int64_t(k_store.size()));
  DeviceBuffer<bf16> dv = upload_bf16(alloc, v_store.data(), int64_t(v_store.size()));
  DeviceBuffer<int32_t> dtable(alloc, std::max<int64_t>(1, blocks));
  if (blocks) CTX_CUDA_CHECK(cudaMemcpy(dtable.get(), table.data(), size_t(blocks) * 4, cudaMemcpyHostToDevice));
  rows.k = dk.get(), rows.v = dv.get(), rows.table = blocks ? dtable.get() : nullptr;

  GpuKvCompressor compressor(alloc, c.policy);
  GpuKvCompressResult r;
  compressor.compress(rows, c.layer, c.length, c.position, c.count, nullptr, &r.kept);
  std::vector<bf16> hk(k_store.size()), hv(v_store.size());
  CTX_CUDA_CHECK(cudaMemcpy(hk.data(), dk.get(), size_t(dk.bytes()), cudaMemcpyDeviceToHost));
  CTX_CUDA_CHECK(cudaMemcpy(hv.data(), dv.get(), size_t(dv.bytes()), cudaMemcpyDeviceToHost));
  r.k.resize(size_t(c.kv_heads * c.count * c.hd)), r.v.resize(r.k.size());
  for (int64_t h = 0; h < c.kv_heads; ++h)
    for (int64_t i = 0; i < c.count; ++i)
      for (int64_t e = 0; e < c.hd; ++e) {
        const size_t to = size_t((h * c.count + i) * c.hd + e);
        r.k[to] = __bfloat162float(hk[size_t(host_rows.offset(h, i) + e)]);
        r.v[to] = __bfloat162float(hv[size_t(host_rows.offset(h, i) + e)]);
      }
  return r;
}

}  // namespace ctx::cuda
