// The cache of one sequence: K/V of the attention layers and, for hybrid models, the fixed-size
// recurrent state of the Mamba-2 layers (recurrent(), core/model/recurrent_state.h).
//
// Only attention layers hold K/V: every `layer` argument below is a KV-layer index, 0 ..
// num_layers() - 1 = ModelConfig::num_kv_layers() - 1, numbering the attention layers in order
// (ModelConfig::kv_layer() maps a model layer to it; for attention-only models they coincide).
// Compression, quantization and paging act on these layers only; the recurrent state is neither
// compressed nor paged, and is counted in bytes_reserved()/bytes_used() (recurrent_bytes()).
//
// K/V come in one of two layouts (see core/attention/kv_view.h):
//   contiguous: per layer, K and V as [kv_heads][capacity][head_dim]; grows by doubling
//   paged:      a block table into a shared BlockPool; blocks allocated on demand, released when
//               the cache is cleared or destroyed; fork() shares blocks copy-on-write
// Writers reserve() room first, then fill slots through key_slot()/value_slot(), then set_length().
//
// Compression (core/kv/kv_compressor.h) makes a cache hold fewer entries than the tokens it has
// seen, so two counts are kept apart:
//   position()      tokens seen so far; the RoPE position of the next token
//   length(layer)   entries stored for a layer (layers may differ, e.g. skipped layers keep all)
// Within a layer every KV head holds the same number of entries, in their original order (so the
// causal mask over stored indices stays right: every older entry precedes the new rows). compact()
// gathers the kept rows of each head to the front and really frees the rest: a contiguous layer is
// reallocated to the kept count (+ headroom), a paged cache returns tail blocks that no layer uses
// any more to the pool (trim(); one block table serves all layers, so a paged cache frees a block
// only when every layer is short enough).
//
// Quantization (core/kv/kv_quant.h; either layout): with set_quantization(), flush(layer) moves the
// oldest entries of a layer beyond the residual window, in whole groups, into a KvQuantStore;
// length(layer) still counts all of them. Contiguous: the float storage then holds only the newest
// entries of the layer. Paged: float entries keep their positions in the blocks, and a block that
// every layer holds quantized goes back to the pool (its table entry becomes kReleasedBlock), so
// the blocks held follow the float entries, not the positions. view(layer) needs a layer without
// quantized entries; view(layer, scratch) serves every layer, dequantizing the quantized prefix into
// `scratch` (a transient buffer of the caller, not counted by bytes_reserved()/bytes_used()).
// Compression of a quantized layer (compact() when the layer holds quantized entries; the one
// semantics the GPU engine follows too, core/cuda/gpu_engine.h): the layer is rebuilt. Every entry is
// taken as float (the quantized prefix dequantized, the float rest as stored), the kept ones are
// gathered in order, the layer's quantized store is emptied (its memory freed) and flush() quantizes
// the first quantized_length(count) kept entries afresh, keys in new groups of `group` consecutive
// kept entries, values per token. So the invariant "the quantized prefix is quantized_length(length)
// entries, in whole groups" holds after compaction as before, and the memory follows the kept count.
// Error: a value row re-quantized from its own dequantized row gets the same codes and its params
// within float rounding (its min and max are reproduced), so values are unaffected by eviction; a
// key re-quantized in a new group gains at most half that group's step, |k'' - k'| <= scale' / 2
// with scale' = (max - min) / (2^bits - 1) of the new group's dequantized channel, on top of its first
// quantization's scale / 2. Each compaction of a quantized layer can add this again (per-step
// compressors add it every step; prefill-time ones once per prefill chunk). Entries still in float
// (the residual window) are moved bit-identical, as without quantization.
// Not thread-safe: one sequence is advanced by one caller at a time (a pool is shared, so caches of
// one pool must be advanced by one thread).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/attention/kv_view.h"
#include "core/base/huge_page_allocator.h"
#include "core/kv/kv_quant.h"
#include "core/model/block_pool.h"
#include "core/model/model_config.h"
#include "core/model/recurrent_state.h"

namespace ctx {

// What a KV compressor keeps with one layer of one sequence: a score per (KV head, entry) that is
// compacted together with K/V (e.g. H2O's accumulated attention; empty when unused), and the decode
// steps since the layer was last compressed.
struct KvLayerState {
  std::vector<std::vector<float>> scores;  // [kv_head][entry] or empty
  int64_t steps_since_compress = 0;
};

class KvCache {
 public:
  // Contiguous layout.
  explicit KvCache(const ModelConfig& config, int64_t initial_capacity = 0);
  // Paged layout over `pool`.
  KvCache(const ModelConfig& config, std::shared_ptr<BlockPool> pool);

  KvCache(KvCache&& o) noexcept = default;
  KvCache& operator=(KvCache&& o) noexcept;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;
  ~KvCache();

  KvLayout layout() const { return pool_ ? KvLayout::kPaged : KvLayout::kContiguous; }
  int64_t position() const { return position_; }
  int64_t length(int64_t layer) const { return lengths_[size_t(layer)]; }
  int64_t num_layers() const { return layers_; }  // attention (KV) layers
  // The Mamba-2 layers' state (empty for attention-only models); advanced by the Transformer.
  RecurrentState& recurrent() { return recurrent_; }
  const RecurrentState& recurrent() const { return recurrent_; }
  int64_t recurrent_bytes() const { return recurrent_.bytes(); }
  // Entries of `layer` that fit without allocating (quantized ones included).
  int64_t capacity(int64_t layer = 0) const;

  // Ensures room for n positions in total: every layer gets room for length(layer) + n - position()
  // entries. Paged: allocates blocks, and gives this cache a private copy of a shared block holding
  // valid entries that the next writes may land in (copy-on-write).
  void reserve(int64_t n);
  // Uncompressed writers: position() and every layer's length become n (slots [0, n) written).
  void set_length(int64_t n);
  // The transformer's per-step bookkeeping: `layer` gained n entries (written after length(layer)),
  // then, after all layers, the sequence advanced by n tokens.
  void append(int64_t layer, int64_t n);
  void advance(int64_t n) { position_ += n; }
  // Keeps `count` entries of each KV head of `layer`: head h keeps the entries
  // keep[h * count .. h * count + count), strictly increasing indices < length(layer). Kept rows
  // move to the front in order, bit-identical; the layer's state scores are compacted alike.
  // Contiguous: the layer is reallocated to count + headroom entries. Paged: shared blocks are
  // copied first (copy-on-write); call trim() afterwards to return unused blocks. A layer holding
  // quantized entries is rebuilt as stated above (then flush()ed: its float storage shrinks too).
  void compact(int64_t layer, int64_t count, const std::vector<int64_t>& keep, int64_t headroom = 0);

  // Quantizes entries from the next flush() on (nothing quantized yet).
  void set_quantization(const KvQuantConfig& config);
  const KvQuantConfig& quantization() const { return quant_; }
  // Entries of `layer` held quantized: always a prefix of the layer, in whole groups.
  int64_t quantized_length(int64_t layer) const;
  // Quantizes the oldest float entries of `layer` until quantized_length(layer) ==
  // quantization().quantized_length(length(layer)); the float storage is shrunk to
  // residual + group entries when it held more. Nothing to do when quantization is off.
  void flush(int64_t layer);
  // Paged: releases tail blocks beyond the longest layer. Contiguous: nothing to do.
  void trim();
  KvLayerState& state(int64_t layer) { return states_[size_t(layer)]; }
  const KvLayerState& state(int64_t layer) const { return states_[size_t(layer)]; }
  // Drops all positions (paged: releases the blocks) and zeroes the recurrent state.
  void clear();

  // Writable slot of (layer, kv head, entry index); quantized_length(layer) <= pos < capacity().
  float* key_slot(int64_t layer, int64_t head, int64_t pos);
  float* value_slot(int64_t layer, int64_t head, int64_t pos);

  KvView view(int64_t layer) const;  // CTX_CHECKs quantized_length(layer) == 0
  // All entries of `layer` as float: view(layer) when none are quantized (scratch untouched), else
  // a contiguous view into `scratch` (resized to 2 * kv_heads * length(layer) * head_dim floats).
  KvView view(int64_t layer, std::vector<float>& scratch) const;

  // A cache with the same contents. Paged: shares every block (no copy until one is written);
  // contiguous: a deep copy.
  KvCache fork() const;

  // Bytes held for this sequence (allocated capacity of every layer, or blocks in its table, plus the
  // quantized stores' codes and params at their capacity) and bytes of valid entries (float entries,
  // codes and params); their difference is the waste. Both include recurrent_bytes(), which is
  // fixed per sequence.
  int64_t bytes_reserved() const;
  int64_t bytes_used() const;
  // Paged: the block of positions b * block_size .. (b + 1) * block_size - 1, or kReleasedBlock below
  // a quantized prefix (those positions are read from the quantized stores).
  const std::vector<int32_t>& block_table() const { return blocks_; }
  static constexpr int32_t kReleasedBlock = -1;

 private:
  KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, std::shared_ptr<BlockPool> pool);
  void release_blocks();
  int64_t position_bytes() const { return layers_ * entry_bytes(); }
  int64_t entry_bytes() const { return 2 * kv_heads_ * head_dim_ * 4; }  // K and V of one layer
  int64_t max_length() const;
  void make_private(int64_t first_block, int64_t end_block);  // paged copy-on-write
  // Contiguous: reallocates layer l's float storage to new_cap entries holding its float entries
  // [from, from + count) at the front.
  void relocate(size_t l, int64_t new_cap, int64_t from, int64_t count);
  int64_t float_length(size_t l) const { return lengths_[l] - quantized_length(int64_t(l)); }
  // The layer's float entries: contiguous from float index 0 (entry quantized_length(layer)); paged,
  // the blocks at their positions (float index = position).
  KvView float_view(int64_t layer) const;
  int64_t float_index(int64_t layer, int64_t pos) const { return pool_ ? pos : pos - quantized_length(layer); }
  int64_t pos_of_float(int64_t layer, int64_t i) const { return pool_ ? i : i + quantized_length(layer); }
  int64_t held_blocks() const;        // paged: table entries that are not kReleasedBlock
  void release_quantized_blocks();    // paged: blocks below every layer's quantized prefix to the pool

  int64_t layers_, kv_heads_, head_dim_;
  int64_t position_ = 0;
  std::vector<int64_t> lengths_;
  std::vector<KvLayerState> states_;
  // contiguous
  std::vector<int64_t> capacities_;
  using Storage = std::vector<float, HugePageAllocator<float>>;  // contiguous layout
  std::vector<Storage> k_, v_;
  KvQuantConfig quant_;
  std::vector<KvQuantStore> quantized_;  // per layer when quantization is on
  // paged
  std::shared_ptr<BlockPool> pool_;
  std::vector<int32_t> blocks_;
  RecurrentState recurrent_;
};

}  // namespace ctx
