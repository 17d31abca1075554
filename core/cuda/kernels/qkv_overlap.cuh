// Reading qkv rows that the GEMV before this launch may still be writing (kernels.h
// AttentionParams::Rope::overlap; internal to core/cuda/kernels).
//
// The GEMV stores every element once, and an element not stored yet holds kQkvUnwritten's bits, so
// the value is its own flag: a reader polls the element until it is a value (through L2, which all
// SMs' stores reach; L1 is not coherent with them). No fence or counter on the GEMV's side. The last
// block to read a row writes kQkvUnwritten back (last_reader, mark_unwritten), for the next launch.
#pragma once

#include <cstdint>

#include "core/cuda/kernels/kernels.h"

namespace ctx::cuda {

__device__ __forceinline__ bool qkv_unwritten(float v) { return __float_as_uint(v) == kQkvUnwritten; }

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// *p once the GEMV has stored it: polls with a growing pause (32 .. 512 ns); traps when it is still
// unwritten after 2 s (the launch fails with an error instead of hanging the stream).
__device__ __noinline__ float spin_until_written(const float* p) {
  const uint64_t since = global_ns();
  unsigned pause = 32;
  while (true) {
    __nanosleep(pause);
    if (pause < 512) pause *= 2;
    const float v = __ldcg(p);
    if (!qkv_unwritten(v)) return v;
    if (global_ns() - since > 2000000000ull) __trap();
  }
}

// *p, written by the GEMV (spinning until it is): the loads of every row a block reads, and thread 0's
// wait for the element its block's rows get last (so that the other threads then mostly find theirs
// written instead of all of them polling).
__device__ __forceinline__ float load_written(const float* p) {
  const float v = __ldcg(p);
  return qkv_unwritten(v) ? spin_until_written(p) : v;
}

// One warp, after its block has read some rows: whether the block is the last of `readers` that read
// them (counted at *counter, 0 between launches, then set back to 0 by the last; readers == 1 counts
// nothing). The blocks' reads are done (their values used) before they count in.
__device__ inline bool last_reader(int* counter, int readers, int lane) {
  int last = 1;
  if (readers > 1 && lane == 0) {
    last = atomicAdd(counter, 1) == readers - 1;
    if (last) *counter = 0;
  }
  return __shfl_sync(0xffffffffu, last, 0);
}

// One warp: kQkvUnwritten's bits over the n floats at rows, for the next launch (the last reader).
__device__ inline void mark_unwritten(float* rows, int64_t n, int lane) {
  for (int64_t i = lane; i < n; i += 32) rows[i] = __uint_as_float(kQkvUnwritten);
}

}  // namespace ctx::cuda
