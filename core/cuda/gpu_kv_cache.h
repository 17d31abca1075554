// The GPU engine's K/V storage for every attention layer and up to `slots` sequences, contiguous or
// paged (internal to core/cuda; GpuEngineOptions documents the user-facing options).
//
//   contiguous  per layer [slot][kv_head][capacity][head_dim]: every slot holds `capacity` positions
//               from creation on
//   paged       per layer a pool [kv_head][pool_blocks][block_size][head_dim] (the CPU BlockPool's
//               layout); reserve(slot, n) hands the slot free blocks until it holds n positions, and
//               one block table [slots][max_blocks] on the device (shared by all layers) names them;
//               release_all() returns every block. A reservation the pool cannot meet throws
//               CudaOutOfMemory naming the bytes asked for and free in the pool.
// bind() fills the KV fields of the kernels' parameters for one layer: for one sequence (slot >= 0,
// positions from pos0) or for batched decode (slot < 0: row t is slot t, positions from seq_lens).
// Not thread-safe; table uploads are enqueued on the stream given to reserve().
#pragma once

#include <cstdint>
#include <vector>

#include "core/cuda/device_allocator.h"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/kv_compress_kernels.h"

namespace ctx::cuda {

struct GpuKvShape {
  int64_t layers = 0, kv_heads = 0, head_dim = 0;
  int64_t slots = 1, capacity = 0;  // sequences and positions per sequence
  int64_t block_size = 0;           // 0: contiguous
  int64_t pool_positions = 0;       // paged: pool size (0: slots * capacity, rounded up to blocks)
};

class GpuKvCache {
 public:
  GpuKvCache(DeviceAllocator& alloc, const GpuKvShape& shape);

  bool paged() const { return shape_.block_size > 0; }
  // Makes `slot` hold at least `positions` positions (paged: takes blocks from the pool and uploads
  // the slot's table row on `stream`, then waits for it; contiguous: checks the capacity).
  void reserve(int64_t slot, int64_t positions, cudaStream_t stream);
  void release_all();  // every slot holds nothing (paged: all blocks free)
  // Paged: `slot` keeps only the blocks of its first `positions` positions, the others go back to the
  // pool (after compaction); contiguous: nothing to do.
  void shrink(int64_t slot, int64_t positions);
  int64_t held_blocks(int64_t slot) const { return paged() ? held_[size_t(slot)] : 0; }

  void bind(int64_t layer, int64_t slot, QkvRopeParams& r, AttentionParams& a) const;
  // One layer's K/V of one sequence as the compaction kernels address it (kv_compress_kernels.h).
  KvLayerRows rows(int64_t layer, int64_t slot) const;

  int64_t bytes() const { return k_.bytes() + v_.bytes(); }  // K and V held from the device
  int64_t bytes_in_use() const;                              // paged: of blocks sequences hold
  int64_t pool_blocks() const { return pool_blocks_; }
  int64_t free_blocks() const { return int64_t(free_.size()); }

 private:
  int64_t layer_elements() const;

  GpuKvShape shape_;
  int shift_ = 0;
  int64_t pool_blocks_ = 0, max_blocks_ = 0;  // paged
  DeviceBuffer<bf16> k_, v_;
  DeviceBuffer<int32_t> table_;          // paged: [slots][max_blocks]
  std::vector<int32_t> table_host_;      // its host copy (the source of uploads: lives as long as the cache)
  std::vector<int64_t> held_;            // paged: blocks per slot
  std::vector<int32_t> free_;            // paged: free block ids (popped from the back)
};

}  // namespace ctx::cuda
