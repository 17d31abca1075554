// `flash`: FlashAttention-2 style tiled attention over a contiguous KV cache (tiled_attention.h):
// query tiles of block_q positions x the heads of a KV group against KV tiles of block_kv keys,
// S = Q K^T per tile by an AVX2 micro-kernel, online softmax across KV tiles, no T x T matrix. Tiles
// outside the causal/window range are skipped by interval arithmetic; only tiles that straddle the
// diagonal or the window edge are masked per element. Decode (n_new <= 4) uses split-KV
// (Flash-Decoding) with an exact log-sum-exp reduction across splits.
#include "core/plugin/catalog.h"
#include "plugins/attention/common/tiled_attention.h"
#include "plugins/attention/common/visible_range.h"

namespace ctx {
namespace {

class FlashAttention final : public AttentionBackend {
 public:
  explicit FlashAttention(TileOptions options) : options_(options) {}
  Support supports(const AttentionParams& p, KvLayout layout) const override {
    if (layout != KvLayout::kContiguous) return Support::no("flash reads a contiguous KV cache (use `paged` for block tables)");
    return check_shape(p);
  }
  void forward(const AttentionParams& p, std::span<const AttentionSequence> batch) const override {
    causal_tiled_attention(p, batch, options_);
  }

 private:
  TileOptions options_;
};

}  // namespace

void register_flash(Catalog& catalog) {
  catalog.attention.add(
      {"flash", 1, "FlashAttention-2 tiling with online softmax; split-KV (Flash-Decoding) for decode; contiguous KV",
       {ParamSpec::Int("block_q", 64, 1, 1024, "query positions per tile (times the query heads of a KV group)"),
        ParamSpec::Int("block_kv", 64, 1, 1024, "keys per tile"),
        ParamSpec::Int("num_splits", 0, 0, 1024,
                       "decode (n_new <= 4) KV splits per (sequence, KV head); 0 = auto from threads and length")}},
      [](const Params& params) {
        return std::make_unique<FlashAttention>(
            TileOptions{params.get_int("block_q"), params.get_int("block_kv"), params.get_int("num_splits")});
      });
}

}  // namespace ctx
