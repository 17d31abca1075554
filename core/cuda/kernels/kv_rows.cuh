// Where key j's row of one KV head lives (internal to core/cuda/kernels): the row-address policies
// the split-KV decode kernels (attention_pass.cuh) and the flash prefill kernels
// (flash_attention_common.cuh) read K and V through, so that one kernel body serves both layouts.
//   ContiguousRows  [capacity][hd] per KV head: row j at j * hd
//   PagedRows       [pool_blocks][block_size][hd] per KV head: row j in pool block table[j >> shift],
//                   at j & (block_size - 1)
//   PagedPool       a whole layer's pool [kv_heads][pool_blocks][block_size][hd] and its block table
//                   [sequences][max_blocks] (kernels.h AttentionParams::pool and QkvRopeParams::pool,
//                   kivi_kernels.h, kv_compress_kernels.h): the PagedRows of each (sequence, KV head)
// operator()(j) is the element offset of row j from the KV head's base; j must be a key the
// sequence holds (PagedRows reads its table entry).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace ctx::cuda {

struct ContiguousRows {
  int64_t hd;
  __device__ int64_t operator()(int64_t j) const { return j * hd; }
};

struct PagedRows {
  const int32_t* table;  // this sequence's row of the block table
  int shift;             // log2(block_size)
  int64_t hd;
  // On the host (tests) the table must be host memory.
  __host__ __device__ int64_t operator()(int64_t j) const {
#ifdef __CUDA_ARCH__
    const int64_t block = __ldg(table + (j >> shift));
#else
    const int64_t block = table[j >> shift];
#endif
    return ((block << shift) | (j & ((int64_t(1) << shift) - 1))) * hd;
  }
};

struct PagedPool {
  const int32_t* table = nullptr;  // [sequences][max_blocks] (device); null: not paged
  int64_t max_blocks = 0, pool_blocks = 0;
  int shift = 0;                   // log2(block_size)

  __host__ __device__ bool paged() const { return table != nullptr; }
  // A shape the kernels take: blocks of 1..1024 positions, a table row and a pool block at least.
  bool valid() const { return shift >= 0 && shift <= 10 && max_blocks > 0 && pool_blocks > 0; }
  // Rows of one KV head's part of the pool.
  __host__ __device__ int64_t head_rows() const { return pool_blocks << shift; }
  // Sequence seq's rows (from its KV head's base, head_rows() * hd elements per head); not paged: a
  // PagedRows with a null table.
  __host__ __device__ PagedRows rows(int64_t seq, int64_t hd) const {
    return {table ? table + seq * max_blocks : nullptr, shift, hd};
  }
  // Element offset of row r of (sequence seq, KV head h) from the layer's base.
  __host__ __device__ int64_t offset(int64_t seq, int64_t h, int64_t r, int64_t hd) const {
    return h * head_rows() * hd + rows(seq, hd)(r);
  }
};

}  // namespace ctx::cuda
