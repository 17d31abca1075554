// Measures this machine's main-memory bandwidth with the current thread count, so that memory-bound
// kernels (decode) can be reported as a fraction of what the hardware delivers in the same run.
// Not thread-safe with other compute (it uses all threads and evicts caches).
#pragma once

#include <cstddef>

namespace ctx {

struct MemoryBandwidth {
  double copy_gbps = 0;  // STREAM "copy" convention: (bytes read + bytes written) / time
  double read_gbps = 0;  // bytes read / time (a streaming sum)
  size_t buffer_bytes = 0;
};

// Best of `repeats` passes over buffers of `buffer_bytes` each (much larger than the caches).
MemoryBandwidth measure_memory_bandwidth(size_t buffer_bytes = size_t(512) << 20, int repeats = 5);

}  // namespace ctx
