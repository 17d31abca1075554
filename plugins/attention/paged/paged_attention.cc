// `paged`: PagedAttention. Keys and values live in fixed-size blocks of a shared pool, addressed
// through each sequence's block table (the engine allocates them on demand, frees them when a
// sequence ends, and shares prefix blocks copy-on-write). The kernel is the online-softmax row kernel
// of `sdpa`, reading each block's rows through the table.
#include "core/plugin/catalog.h"
#include "plugins/attention/common/online_softmax.h"
#include "plugins/attention/common/visible_range.h"

namespace ctx {
namespace {

class PagedAttention final : public AttentionBackend {
 public:
  explicit PagedAttention(int64_t block_size) : block_size_(block_size) {}
  KvLayout layout() const override { return KvLayout::kPaged; }
  int64_t block_size() const override { return block_size_; }
  Support supports(const AttentionParams& p, KvLayout layout) const override {
    if (layout != KvLayout::kPaged) return Support::no("paged reads a block-table (paged) KV cache");
    return check_shape(p);
  }
  void forward(const AttentionParams& p, std::span<const AttentionSequence> batch) const override {
    attend_batch_online(p, batch);
  }

 private:
  int64_t block_size_;
};

}  // namespace

void register_paged(Catalog& catalog) {
  catalog.attention.add(
      {"paged", 1, "PagedAttention: KV in fixed-size blocks of a shared pool read through block tables",
       {ParamSpec::Int("block_size", 16, 1, 4096, "positions per KV block")}},
      [](const Params& params) { return std::make_unique<PagedAttention>(params.get_int("block_size")); });
}

}  // namespace ctx
