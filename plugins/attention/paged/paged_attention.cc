// `paged`: PagedAttention. Keys and values live in fixed-size blocks of a shared pool, addressed
// through each sequence's block table (the engine allocates them on demand, frees them when a
// sequence ends, and shares prefix blocks copy-on-write).
//   prefill / multi-row steps: the online-softmax row kernel of `sdpa`, reading each block's rows
//     through the table (online_softmax.h).
//   decode (one new row): block-major split-KV. A block holds every KV head's rows for its positions
//     as one contiguous run ([kv_heads][block_size][head_dim]), so each thread streams whole blocks of
//     its share of the table, updates the online-softmax state of all query heads (the rows of a KV
//     head are reused by its whole GQA group while in cache), and the shares are merged exactly
//     (log-sum-exp), as Flash-Decoding does.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/base/error.h"
#include "core/plugin/catalog.h"
#include "plugins/attention/common/online_softmax.h"
#include "plugins/attention/common/tile_kernels.h"
#include "plugins/attention/common/vec_ops.h"
#include "plugins/attention/common/visible_range.h"

namespace ctx {
namespace {

constexpr int64_t kMinKeysPerSplit = 256;

struct DecodeItem {
  size_t seq;
  int64_t block_lo, block_hi;  // block indices [lo, hi) of the sequence's table
  int64_t split, splits;
  int64_t partial;  // offset of the sequence's partials
};

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
    std::vector<AttentionSequence> rows, decode;
    for (const auto& s : batch) (s.n_new == 1 ? decode : rows).push_back(s);
    if (!rows.empty()) attend_batch_online(p, rows);
    if (!decode.empty()) decode_block_major(p, decode);
  }

 private:
  void decode_block_major(const AttentionParams& p, const std::vector<AttentionSequence>& seqs) const {
    const int64_t H = p.num_heads, G = H / p.num_kv_heads, hd = p.head_dim, bs = block_size_;
    const int64_t threads = omp_get_max_threads();
    std::vector<DecodeItem> items;
    std::vector<int64_t> seq_partial(seqs.size()), seq_splits(seqs.size());
    int64_t partial_size = 0, work = 0;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const AttentionSequence& s = seqs[i];
      CTX_CHECK(s.kv.layout == KvLayout::kPaged && s.kv.block_size == bs);
      const int64_t pos = s.kv.length - 1, first = first_visible_key(p, pos);
      const int64_t b0 = first / bs, nb = pos / bs - b0 + 1;
      const int64_t want = (2 * threads + int64_t(seqs.size()) - 1) / int64_t(seqs.size());
      const int64_t splits = std::clamp<int64_t>(want, 1, std::max<int64_t>(1, (pos - first + 1) / kMinKeysPerSplit));
      seq_partial[i] = partial_size;
      seq_splits[i] = splits;
      partial_size += splits * H * (hd + 2);
      work += pos - first + 1;
      for (int64_t sp = 0; sp < splits; ++sp)
        items.push_back({i, b0 + sp * nb / splits, b0 + (sp + 1) * nb / splits, sp, splits, seq_partial[i]});
    }
    std::vector<float> partials(static_cast<size_t>(partial_size));
#pragma omp parallel if (int64_t(items.size()) > 1 && work * H * hd >= (1 << 16))
    {
      std::vector<float> o(static_cast<size_t>(H * hd));
      std::vector<OnlineSoftmaxState> st(static_cast<size_t>(H));
      std::vector<float> scores(static_cast<size_t>(H * kOnlineChunk));
#pragma omp for schedule(dynamic, 1)
      for (int64_t it = 0; it < int64_t(items.size()); ++it) {
        const DecodeItem& item = items[size_t(it)];
        const AttentionSequence& s = seqs[item.seq];
        const int64_t pos = s.kv.length - 1, first = first_visible_key(p, pos);
        std::fill(o.begin(), o.end(), 0.0f);
        for (int64_t h = 0; h < H; ++h) st[size_t(h)] = {-INFINITY, 0.0f, o.data() + h * hd};
        // Small blocks are taken a few at a time so that each softmax update covers up to
        // kOnlineChunk keys. Keys and values are read in memory order (block by block, and within a
        // block head by head: [kv_head][pos][d] is one contiguous run), in two passes per group:
        // scores of every query head from K, then the softmax update, then V accumulation.
        const int64_t per_group = std::max<int64_t>(1, kOnlineChunk / bs);
        for (int64_t b0 = item.block_lo; b0 < item.block_hi; b0 += per_group) {
          const int64_t b1 = std::min(item.block_hi, b0 + per_group);
          const int64_t lo = std::max(first, b0 * bs), hi = std::min(pos, b1 * bs - 1);
          for (int64_t c0 = lo; c0 <= hi; c0 += kOnlineChunk) {
            const int64_t n = std::min(kOnlineChunk, hi - c0 + 1);
            // Pass 1: scores[h][j] for key c0 + j, reading K in memory order.
            s.kv.for_each_run(c0, c0 + n, [&](int64_t pos, int64_t r) {
              for (int64_t g = 0; g < p.num_kv_heads; ++g) {
                const float* k = s.kv.key(g, pos);
                for (int64_t i = 0; i < r; ++i)
                  for (int64_t h = g * G; h < (g + 1) * G; ++h)
                    scores[size_t(h * kOnlineChunk + pos - c0 + i)] = vec::dot(s.q + h * hd, k + i * hd, hd) * p.scale;
              }
            });
            for (int64_t h = 0; h < H; ++h) online_softmax_update(scores.data() + h * kOnlineChunk, n, hd, st[size_t(h)]);
            // Pass 2: accumulate V in memory order.
            s.kv.for_each_run(c0, c0 + n, [&](int64_t pos, int64_t r) {
              for (int64_t g = 0; g < p.num_kv_heads; ++g) {
                const float* v = s.kv.value(g, pos);
                for (int64_t i = 0; i < r; ++i)
                  for (int64_t h = g * G; h < (g + 1) * G; ++h)
                    vec::scale_axpy(st[size_t(h)].out, 1.0f, scores[size_t(h * kOnlineChunk + pos - c0 + i)], v + i * hd, hd);
              }
            });
          }
        }
        // Partial layout of a sequence: o [splits][H][hd], then m [splits][H], then l [splits][H].
        float* base = partials.data() + item.partial;
        std::copy(o.begin(), o.end(), base + item.split * H * hd);
        for (int64_t h = 0; h < H; ++h) {
          base[item.splits * H * hd + item.split * H + h] = st[size_t(h)].max;
          base[item.splits * H * (hd + 1) + item.split * H + h] = st[size_t(h)].sum;
        }
      }
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
      const float* base = partials.data() + seq_partial[i];
      const int64_t S = seq_splits[i];
      for (int64_t h = 0; h < H; ++h)
        tile::merge_splits(base + S * H * hd + h, base + S * H * (hd + 1) + h, base + h * hd, S, H, hd,
                           seqs[i].out + h * hd);
    }
  }

  int64_t block_size_;
};

}  // namespace

void register_paged(Catalog& catalog) {
  catalog.attention.add(
      {"paged", 1, "PagedAttention: KV in fixed-size blocks of a shared pool read through block tables; block-major split-KV decode",
       {ParamSpec::Int("block_size", 16, 1, 4096, "positions per KV block")}},
      [](const Params& params) { return std::make_unique<PagedAttention>(params.get_int("block_size")); });
}

}  // namespace ctx
