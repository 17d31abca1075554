#include "core/cuda/gpu_attention.h"

#include <algorithm>
#include <cmath>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_allocator.h"
#include "core/cuda/event_timer.h"
#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

namespace {

void check_case(const GpuAttentionCase& c) {
  if (c.heads < 1 || c.kv_heads < 1 || c.heads % c.kv_heads != 0)
    fail("gpu_attention: heads ", c.heads, " must be a positive multiple of kv_heads ", c.kv_heads);
  if (c.head_dim < 1 || c.head_dim > 256) fail("gpu_attention: head_dim ", c.head_dim, " outside 1..256");
  if (c.queries < 1 || c.length < c.queries)
    fail("gpu_attention: ", c.queries, " queries need a cache of at least as many positions, not ", c.length);
  if (c.splits < 0) fail("gpu_attention: splits ", c.splits, " < 0");
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw Unsupported("gpu_attention: no CUDA device is available");
  }
}

// Host float -> device bf16, transposing [length, kv_heads, hd] into the cache's [kv_heads][length][hd].
void upload_cache(std::span<const float> x, const GpuAttentionCase& c, bf16* dst) {
  std::vector<float> t(x.size());
  for (int64_t p = 0; p < c.length; ++p)
    for (int64_t h = 0; h < c.kv_heads; ++h)
      std::copy_n(x.data() + (p * c.kv_heads + h) * c.head_dim, c.head_dim,
                  t.data() + (h * c.length + p) * c.head_dim);
  std::vector<uint16_t> b(t.size());
  convert_f32_to_bf16(t.data(), b.data(), t.size());
  CTX_CUDA_CHECK(cudaMemcpy(dst, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
}

// The device side of one case: cache, query, positions and workspaces.
struct DeviceCase {
  DeviceBuffer<bf16> q, k, v, out;
  DeviceBuffer<int32_t> pos0;
  DeviceBuffer<float> partial;
  DeviceBuffer<int> counters;
  AttentionParams params;

  DeviceCase(DeviceAllocator& alloc, const GpuAttentionCase& c, int64_t cache_copies)
      : q(alloc, c.queries * c.heads * c.head_dim),
        k(alloc, cache_copies * c.kv_heads * c.length * c.head_dim),
        v(alloc, cache_copies * c.kv_heads * c.length * c.head_dim),
        out(alloc, c.queries * c.heads * c.head_dim),
        pos0(alloc, 1) {
    const int splits = c.splits > 0 ? c.splits : default_attention_splits(c.length, c.queries);
    partial = DeviceBuffer<float>(alloc, c.queries * c.heads * splits * (c.head_dim + 2));
    counters = DeviceBuffer<int>(alloc, c.queries * c.heads);
    CTX_CUDA_CHECK(cudaMemset(counters.get(), 0, counters.bytes()));
    const int32_t first = int32_t(c.length - c.queries);
    CTX_CUDA_CHECK(cudaMemcpy(pos0.get(), &first, 4, cudaMemcpyHostToDevice));
    AttentionParams& p = params;
    p.q = q.get(), p.k_cache = k.get(), p.v_cache = v.get(), p.pos0 = pos0.get();
    p.n = c.queries, p.heads = c.heads, p.kv_heads = c.kv_heads, p.hd = c.head_dim, p.capacity = c.length;
    p.window = c.window;
    p.scale = c.scale > 0 ? c.scale : float(1.0 / std::sqrt(double(c.head_dim)));
    p.splits = splits, p.partial = partial.get(), p.counters = counters.get(), p.out = out.get();
    p.vectorized = c.vectorized;
  }
};

}  // namespace

std::vector<float> gpu_attention(const GpuAttentionCase& c, std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v) {
  check_case(c);
  const size_t q_size = size_t(c.queries * c.heads * c.head_dim), kv_size = size_t(c.length * c.kv_heads * c.head_dim);
  if (q.size() != q_size || k.size() != kv_size || v.size() != kv_size)
    fail("gpu_attention: tensor sizes q ", q.size(), ", k ", k.size(), ", v ", v.size(), " do not match the case (", q_size,
         ", ", kv_size, ", ", kv_size, ")");
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, 1);
  std::vector<uint16_t> qb(q_size);
  convert_f32_to_bf16(q.data(), qb.data(), q_size);
  CTX_CUDA_CHECK(cudaMemcpy(d.q.get(), qb.data(), q_size * 2, cudaMemcpyHostToDevice));
  upload_cache(k, c, d.k.get());
  upload_cache(v, c, d.v.get());
  launch_attention(d.params, nullptr);
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
  const int64_t cache_bytes = 2 * c.kv_heads * c.length * c.head_dim * 2;  // K and V, bf16
  const int64_t copies = copies_beyond_l2(cache_bytes, 1);
  DeviceAllocator alloc;
  DeviceCase d(alloc, c, copies);
  launch_fill_random(d.q.get(), c.heads * c.head_dim, 1, nullptr);
  launch_fill_random(d.k.get(), copies * c.kv_heads * c.length * c.head_dim, 2, nullptr);
  launch_fill_random(d.v.get(), copies * c.kv_heads * c.length * c.head_dim, 3, nullptr);
  constexpr int kLaunches = 20;
  int64_t next = 0;
  AttentionParams p = d.params;
  const double ms = median_ms(reps, [&] {
    for (int i = 0; i < kLaunches; ++i) {
      const int64_t at = (next++ % copies) * c.kv_heads * c.length * c.head_dim;
      p.k_cache = d.k.get() + at, p.v_cache = d.v.get() + at;
      launch_attention(p, nullptr);
    }
  });
  AttentionTiming t;
  t.splits = p.splits;
  t.us = ms * 1e3 / kLaunches;
  t.bytes_per_s = double(cache_bytes) / (t.us * 1e-6);
  return t;
}

}  // namespace ctx::cuda
