// The GPU engine's K/V storage for every attention layer and up to `slots` sequences, contiguous or
// paged (internal to core/cuda; GpuEngineOptions documents the user-facing options).
//
//   contiguous  per layer [slot][kv_head][capacity][head_dim]: every slot holds `capacity` positions
//               from creation on
//   paged       per layer a pool [kv_head][pool_blocks][block_size][head_dim] (the CPU BlockPool's
//               layout); reserve(slot, n) hands the slot free blocks until it holds n positions, and
//               one block table [slots][max_blocks] on the device (shared by all layers) names them;
//               release_all() returns every block. The pool starts empty and grows on the device as
//               reservations need blocks (each layer's K and V reallocated and copied in turn, so
//               the transient is one layer's, up to pool_positions): device memory follows the
//               blocks held, not slots x capacity. A reservation beyond pool_positions throws
//               CudaOutOfMemory naming the bytes asked for and free in the pool; one the device
//               allocator cannot meet (its memory limit) throws the allocator's CudaOutOfMemory,
//               and the cache stays usable at its old size. Growing moves the buffers: version()
//               changes, and kernels bound before (CUDA graphs) must be bound again.
//   KIVI        (quant.bits > 0) per layer the codes and params (kernels.h: KiviKv) of
//               code_rows() entries for every slot ([slot][kv_head][code_rows]): reserve(slot, n)
//               grows them to qlen(n) = the entries n positions (or entries, with compression) hold
//               quantized, when no slot held as many, fit_codes(n) sets them to qlen(n) (smaller
//               after compression), both reallocating every layer in turn and copying what is kept
//               (the transient is one layer's), so the codes' device memory follows the entries
//               held (times the slots: the longest sequence sets the rows), not the capacity;
//               version() changes. quantize() / quantize_batch() fill the groups a forward
//               completes, and attention reads entries below qlen from them. The bf16 cache is a ring
//               of residual + group + max_forward positions per slot (or all `capacity` when that is
//               not fewer): entry j at row j % ring. expand() / store_float() move one layer of slot
//               0 between the codes + ring and a full bf16 copy (the engine's rebuild after
//               compression, which serves one sequence).
//   paged KIVI  the same codes; the ring (rounded up to whole blocks) lives in the paged pool: ring
//               row r of a slot in the block of its table entry r / block_size, so a slot holds
//               ceil(min(positions, ring) / block_size) blocks whatever its length, and the pool's
//               bf16 memory follows the slots that hold entries (kernels/kivi_kernels.h
//               KiviBf16Rows). The codes are not paged: they are the per-slot arrays above.
// bind() fills the KV fields of the kernels' parameters for one layer: for one sequence (slot >= 0,
// positions from pos0) or for batched decode (slot < 0: row t is slot t, positions from seq_lens).
// Not thread-safe; table uploads are enqueued on the stream given to reserve().
#pragma once

#include <cstdint>
#include <vector>

#include "core/cuda/device_allocator.h"
#include "core/cuda/kernels/kernels.h"
#include "core/kv/kv_quant.h"
#include "core/cuda/kernels/kv_compress_kernels.h"

namespace ctx::cuda {

struct KiviLayerCopy;       // kernels/kivi_kernels.h
struct KiviQuantizeParams;  // kernels/kivi_kernels.h

struct GpuKvShape {
  int64_t layers = 0, kv_heads = 0, head_dim = 0;
  int64_t slots = 1, capacity = 0;  // sequences and positions per sequence
  int64_t block_size = 0;           // 0: contiguous
  int64_t pool_positions = 0;       // paged: pool size (0: slots * capacity, rounded up to blocks)
  KvQuantConfig quant;              // bits > 0: KIVI codes beside the bf16 cache (contiguous or paged)
  int64_t max_forward = 0;          // KIVI: the most tokens one forward writes (sizes the bf16 ring)
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
  // KIVI: the codes of every layer hold exactly qlen(positions) entries (entries beyond are dropped:
  // call it after compaction, or to give back what a reservation took). Else nothing to do.
  void fit_codes(int64_t positions, cudaStream_t stream);
  int64_t code_rows() const { return code_rows_; }
  // KIVI, for the engine's rebuild of a compressed layer and its prefill attention (kivi_kernels.h
  // KiviLayerCopy): entries [0, length) of (layer, slot) into k_full/v_full [kv_heads][full_rows][hd],
  // the first `quantized` from the codes; and back (slot 0): entries [quantized, length) of
  // k_full/v_full into the ring, entries [0, quantized) quantized from them into the codes (groups of
  // `group`). Enqueue only.
  void expand(int64_t layer, int64_t quantized, int64_t length, bf16* k_full, bf16* v_full, int64_t full_rows,
              cudaStream_t stream, int64_t slot = 0) const;
  void store(int64_t layer, int64_t quantized, int64_t length, const bf16* k_full, const bf16* v_full,
             int64_t full_rows, cudaStream_t stream) const;
  int64_t held_blocks(int64_t slot) const { return paged() ? held_[size_t(slot)] : 0; }
  // Changes whenever a buffer bind() hands out moves (paged growth).
  int64_t version() const { return version_; }

  void bind(int64_t layer, int64_t slot, QkvRopeParams& r, AttentionParams& a) const;
  // KIVI: enqueues the quantization of the groups of (layer, slot) that a forward of `count` tokens
  // at position *pos0 (device memory) completes, from the bf16 rows it wrote (KvCache::flush).
  void quantize(int64_t layer, int64_t slot, const int32_t* pos0, int64_t count, cudaStream_t stream) const;
  // KIVI, batched decode: the groups that one token of each slot s < seqs completes, the token at
  // position seq_lens[s] - 1 (device memory; bind()'s slot -1 layout).
  void quantize_batch(int64_t layer, const int32_t* seq_lens, int64_t seqs, cudaStream_t stream) const;
  // One layer's K/V of one sequence as the compaction kernels address it (kv_compress_kernels.h).
  KvLayerRows rows(int64_t layer, int64_t slot) const;

  // K and V held from the device (with KIVI: and the codes and params)
  int64_t bytes() const;
  int64_t bytes_in_use() const;                              // paged: of blocks sequences hold (and the codes)
  int64_t pool_blocks() const { return pool_blocks_; }
  int64_t free_blocks() const { return int64_t(free_.size()); }

 private:
  // expand/store's view of a layer: its codes, ring and the bf16 copy k_full/v_full [kv_heads][full_rows].
  KiviLayerCopy layer_copy(int64_t layer, int64_t quantized, int64_t length, bf16* k_full, bf16* v_full,
                           int64_t full_rows, int64_t slot = 0) const;
  int64_t code_bytes() const;  // KIVI: every layer's codes and params
  // Paged: the blocks a slot of `positions` positions holds (KIVI: of its ring's rows).
  int64_t blocks_for(int64_t positions) const;
  // bf16 elements of one layer's K (or V) with `blocks` pool blocks (paged) or all slots (contiguous).
  int64_t layer_elements(int64_t blocks) const;
  // Paged: grows every layer's pool to at least `blocks` blocks (at most max_pool_blocks_).
  void grow(int64_t blocks, cudaStream_t stream);
  int64_t rows() const { return ring_ > 0 ? ring_ : shape_.capacity; }  // bf16 rows per (slot, KV head)
  KiviKv kivi(int64_t layer) const;  // the layer's codes (all slots: slot 0's first)
  KiviQuantizeParams quantize_params(int64_t layer, int64_t slot) const;  // the buffers of bind(layer, slot)
  // Elements of one (slot, KV head)'s KIVI buffers at `rows` code rows: the buffers' sizes per pair
  // and the stride from one slot's pairs to the next.
  struct KiviHeadElems {
    int64_t codes, k_params, v_params;
  };
  KiviHeadElems kivi_head_elems(int64_t rows) const;
  void resize_codes(int64_t rows, cudaStream_t stream);  // every layer's codes to `rows` entries

  DeviceAllocator& alloc_;
  GpuKvShape shape_;
  int shift_ = 0;
  // Paged: blocks every layer's pool holds (usable ids 0..pool_blocks_-1), the most it may grow to,
  // blocks per sequence table row; layer_blocks_[l]: layer l's own pool size (>= pool_blocks_; a
  // growth that failed part-way leaves the first layers larger).
  int64_t pool_blocks_ = 0, max_pool_blocks_ = 0, max_blocks_ = 0;
  std::vector<int64_t> layer_blocks_;
  int64_t version_ = 0;
  std::vector<DeviceBuffer<bf16>> k_, v_;  // per layer
  // KIVI, per layer [slots][kv_heads][code_rows_][row bytes] codes, [slots][kv_heads][code_rows_ /
  // group][head_dim] key params, [slots][kv_heads][code_rows_][value blocks] value params.
  struct KiviLayer {
    DeviceBuffer<uint8_t> k_codes, v_codes;
    DeviceBuffer<KiviParam> k_params, v_params;
  };
  std::vector<KiviLayer> kivi_;
  std::vector<int64_t> kivi_rows_;  // per layer (a resize that failed part-way leaves layers apart)
  int64_t code_rows_ = 0;           // the rows every layer holds at least
  int64_t ring_ = 0;  // KIVI: bf16 rows per (slot, KV head) when fewer than capacity
  DeviceBuffer<int32_t> table_;          // paged: [slots][max_blocks]
  std::vector<int32_t> table_host_;      // its host copy (the source of uploads: lives as long as the cache)
  std::vector<int64_t> held_;            // paged: blocks per slot
  std::vector<int32_t> free_;            // paged: free block ids (popped from the back)
};

}  // namespace ctx::cuda
