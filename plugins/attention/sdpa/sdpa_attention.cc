// `sdpa`: fused scaled-dot-product attention in one pass per query row with an online softmax
// (no T x T score matrix; memory O(chunk)), AVX2 over head_dim. Contiguous KV layout.
#include "core/plugin/catalog.h"
#include "plugins/attention/common/online_softmax.h"
#include "plugins/attention/common/visible_range.h"

namespace ctx {
namespace {

class SdpaAttention final : public AttentionBackend {
 public:
  Support supports(const AttentionParams& p, KvLayout layout) const override {
    if (layout != KvLayout::kContiguous) return Support::no("sdpa reads a contiguous KV cache (use `paged` for block tables)");
    return check_shape(p);
  }
  void forward(const AttentionParams& p, std::span<const AttentionSequence> batch) const override {
    attend_batch_online(p, batch);
  }
};

}  // namespace

void register_sdpa(Catalog& catalog) {
  catalog.attention.add({"sdpa", 1, "fused single-pass attention with online softmax (no T x T matrix), AVX2", {}},
                        [](const Params&) { return std::make_unique<SdpaAttention>(); });
}

}  // namespace ctx
