// A read-only view of one layer's keys and values for one sequence, in either cache layout:
//   contiguous: element (head, pos, d) at k[(head * capacity + pos) * head_dim + d]
//   paged:      block b = block_table[pos / block_size] of a pool of pool_blocks blocks per head,
//               element at k[((head * pool_blocks + b) * block_size + pos % block_size) * head_dim + d]
// Within a head, positions are contiguous rows for run_length(pos) positions from pos on.
// Valid until the cache it came from is next written or grown.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ctx {

enum class KvLayout { kContiguous, kPaged };

struct KvView {
  KvLayout layout = KvLayout::kContiguous;
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t length = 0;  // valid positions
  int64_t num_kv_heads = 0, head_dim = 0;
  int64_t capacity = 0;                  // contiguous: positions per head
  const int32_t* block_table = nullptr;  // paged
  int64_t block_size = 0;                // paged
  int64_t pool_blocks = 0;               // paged: blocks per KV head in the pool

  int64_t offset(int64_t head, int64_t pos) const {
    if (layout == KvLayout::kContiguous) return (head * capacity + pos) * head_dim;
    const int64_t b = block_table[pos / block_size];
    return ((head * pool_blocks + b) * block_size + pos % block_size) * head_dim;
  }
  const float* key(int64_t head, int64_t pos) const { return k + offset(head, pos); }
  const float* value(int64_t head, int64_t pos) const { return v + offset(head, pos); }
  // Positions from `pos` on (up to `end`) that are stored as consecutive rows.
  int64_t run_length(int64_t pos, int64_t end) const {
    return layout == KvLayout::kContiguous ? end - pos : std::min(end, (pos / block_size + 1) * block_size) - pos;
  }
  // Calls f(pos, n) for each run of consecutive rows covering [begin, end), in order.
  template <class F>
  void for_each_run(int64_t begin, int64_t end, F&& f) const {
    for (int64_t pos = begin; pos < end;) {
      const int64_t n = run_length(pos, end);
      f(pos, n);
      pos += n;
    }
  }
};

}  // namespace ctx
