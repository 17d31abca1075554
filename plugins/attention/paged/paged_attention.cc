// `paged`: PagedAttention. Keys and values live in fixed-size blocks of a shared pool, addressed
// through each sequence's block table (the engine allocates them on demand, frees them when a
// sequence ends, and shares prefix blocks copy-on-write). Attention is the FlashAttention-2 tiling of
// `flash` (tiled_attention.h) reading its KV tiles through the block table: a tile of block_kv keys is
// resolved to row pointers once per block it spans, so the tile size (and with it the arithmetic
// intensity of the micro-kernels) does not depend on the block size. Decode uses split-KV
// (Flash-Decoding) exactly as `flash` does.
#include "core/plugin/catalog.h"
#include "plugins/attention/common/tiled_attention.h"
#include "plugins/attention/common/visible_range.h"

namespace ctx {
namespace {

class PagedAttention final : public AttentionBackend {
 public:
  PagedAttention(int64_t block_size, TileOptions options) : block_size_(block_size), options_(options) {}
  KvLayout layout() const override { return KvLayout::kPaged; }
  int64_t block_size() const override { return block_size_; }
  Support supports(const AttentionParams& p, KvLayout layout) const override {
    if (layout != KvLayout::kPaged) return Support::no("paged reads a block-table (paged) KV cache");
    return check_shape(p);
  }
  void forward(const AttentionParams& p, std::span<const AttentionSequence> batch) const override {
    // A layer with a quantized prefix comes as its dequantized contiguous copy (KvCache::view(layer,
    // scratch)): the same tiling reads it through the view.
    for (const AttentionSequence& s : batch)
      CTX_CHECK(s.kv.layout == KvLayout::kContiguous || s.kv.block_size == block_size_, "paged attention: block size ",
                s.kv.block_size, " of a sequence's KV, not ", block_size_);
    causal_tiled_attention(p, batch, options_);
  }

 private:
  int64_t block_size_;
  TileOptions options_;
};

}  // namespace

void register_paged(Catalog& catalog) {
  catalog.attention.add(
      {"paged", 2, "PagedAttention: KV in fixed-size blocks of a shared pool read through block tables; flash tiling and split-KV decode",
       {ParamSpec::Int("block_size", 16, 1, 4096, "positions per KV block"),
        ParamSpec::Int("block_q", 64, 1, 1024, "query positions per tile (times the query heads of a KV group)"),
        ParamSpec::Int("block_kv", 64, 1, 1024, "keys per tile (a tile may span several KV blocks)"),
        ParamSpec::Int("num_splits", 0, 0, 1024,
                       "decode (n_new <= 4) KV splits per (sequence, KV head); 0 = auto from threads and length")}},
      [](const Params& params) {
        return std::make_unique<PagedAttention>(
            params.get_int("block_size"),
            TileOptions{params.get_int("block_q"), params.get_int("block_kv"), params.get_int("num_splits")});
      });
}

}  // namespace ctx
