// The `random` KV compressor's scores (plugins/kv/random), shared by the CPU plugin and the GPU kernel
// (core/cuda/kernels/kv_compress_kernels.cu) so that both keep the same entries: a splitmix64 hash of
// (seed, KV layer, tokens seen) then of (head, entry), the top 24 bits as a float (exact).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define CTX_KV_HOST_DEVICE __host__ __device__
#else
#define CTX_KV_HOST_DEVICE
#endif

namespace ctx {

CTX_KV_HOST_DEVICE inline uint64_t kv_mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The per-(layer, step) part of the hash.
CTX_KV_HOST_DEVICE inline uint64_t kv_random_base(uint64_t seed, int64_t layer, int64_t position) {
  return kv_mix64(kv_mix64(seed ^ kv_mix64(uint64_t(layer))) ^ uint64_t(position));
}

CTX_KV_HOST_DEVICE inline float kv_random_score(uint64_t base, int64_t head, int64_t entry) {
  return float(kv_mix64(base ^ kv_mix64(uint64_t(head) << 32 ^ uint64_t(entry))) >> 40);
}

}  // namespace ctx

#undef CTX_KV_HOST_DEVICE
