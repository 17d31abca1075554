// KV compression on the GPU, alone (GpuKvCompressor in gpu_kv_compressor.h, as the engine runs it),
// for tests against the CPU plugins: plain C++, no CUDA headers.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/cuda/gpu_kv_policy.h"

namespace ctx::cuda {

// For tests: one layer of random K/V ([kv_head][length][hd] floats, held as bf16; block_size > 0: in
// a paged pool whose block table lists the blocks in reverse) compressed to `count` entries.
struct GpuKvCompressCase {
  GpuKvPolicy policy;
  int64_t layer = 0, position = 0, kv_heads = 1, length = 0, hd = 0, count = 0, block_size = 0;
};
struct GpuKvCompressResult {
  std::vector<int32_t> kept;  // [kv_head][count]
  std::vector<float> k, v;    // entries 0..count-1 afterwards: [kv_head][count][hd]
};
// Throws ctx::Unsupported without CUDA.
GpuKvCompressResult gpu_kv_compress(const GpuKvCompressCase& c, std::span<const float> k, std::span<const float> v);

}  // namespace ctx::cuda
