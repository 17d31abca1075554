// FlexAttention on CPU: attention under a user mask_mod and score_mod, with block-sparse skipping.
//
//   mask_mod:  bool  (int64_t b, int64_t h, int64_t q_idx, int64_t kv_idx)   -> key visible?
//   score_mod: float (float score, int64_t b, int64_t h, int64_t q_idx, int64_t kv_idx) -> new score
//
// b is the sequence's batch_index, h the query head, q_idx and kv_idx absolute positions (query row i
// of a sequence is q_idx = kv.length - n_new + i). The score given to score_mod is
// scale * dot(q, k); score_mod runs first, then masked scores become -inf, then softmax over the
// sequence's keys [0, kv.length) (bidirectional masks may look at later positions in the cache).
// A row that sees no key yields zeros. Mods are template parameters (FlashInfer style), so they
// inline into the tiled kernel (plugins/attention/common/tiled_attention.h); they must be pure
// functions, called concurrently from several threads.
//
// BlockMask: for each (query block, KV block) of positions, FULL (every pair visible: no mask
// evaluated), PARTIAL (mask per element) or EMPTY (tile skipped). Blocks are aligned at position 0,
// so a block mask built for a length serves every sequence up to that length. build() classifies a
// block with the mod's own interval classifier `BlockClass classify(b, h, q0, q1, k0, k1)` (half-open
// ranges) when it has one, O(1) per block (every built-in mod has one and so do their and/or
// compositions); otherwise it evaluates the mod on the block's elements, stopping at the first pair of
// differing answers (so PARTIAL blocks are cheap, FULL and EMPTY ones cost block_q * block_kv calls).
//
// The named mods below are those the `flex` plugin offers in its config (see mask_expr.h):
//   causal          kv_idx <= q_idx
//   sliding_window  causal and kv_idx > q_idx - window (Mistral: the last `window` positions)
//   prefix_lm       kv_idx < prefix, or causal (bidirectional inside the prefix)
//   chunked         causal within fixed chunks: q_idx / chunk == kv_idx / chunk
//   document        causal within a document; documents given by their lengths, positions past the
//                   last listed document belong to the last document (generation continues it)
//   key_window      kv_idx > q_idx - window alone (the engine's window, ANDed into every flex mask)
//   softcap         cap * tanh(score / cap)               (Gemma 2)
//   alibi           score + slope_h * (kv_idx - q_idx)     (slopes of Press et al. / HF, see alibi_slopes)
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/attention/attention_backend.h"
#include "core/base/error.h"
#include "plugins/attention/common/tiled_attention.h"

namespace ctx {

namespace flex {

struct Causal {
  bool operator()(int64_t, int64_t, int64_t q, int64_t k) const { return k <= q; }
  BlockClass classify(int64_t, int64_t, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    return causal_block_class(q0, q1, k0, k1);
  }
};

struct KeyWindow {
  int64_t window = 0;  // > 0
  bool operator()(int64_t, int64_t, int64_t q, int64_t k) const { return k > q - window; }
  BlockClass classify(int64_t, int64_t, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    return key_window_block_class(window, q0, q1, k0, k1);
  }
};

struct SlidingWindow {
  int64_t window = 0;  // > 0
  bool operator()(int64_t, int64_t, int64_t q, int64_t k) const { return k <= q && k > q - window; }
  BlockClass classify(int64_t, int64_t, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    return block_and(causal_block_class(q0, q1, k0, k1), key_window_block_class(window, q0, q1, k0, k1));
  }
};

struct PrefixLm {
  int64_t prefix = 0;
  bool operator()(int64_t, int64_t, int64_t q, int64_t k) const { return k < prefix || k <= q; }
  BlockClass classify(int64_t, int64_t, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    const BlockClass in_prefix =
        k1 - 1 < prefix ? BlockClass::kFull : (k0 >= prefix ? BlockClass::kEmpty : BlockClass::kPartial);
    return block_or(in_prefix, causal_block_class(q0, q1, k0, k1));
  }
};

// Class of "segment(q) == segment(k)" for a segment function that is non-decreasing in position.
template <class SegmentOf>
BlockClass same_segment_class(const SegmentOf& seg, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  const int64_t qa = seg(q0), qz = seg(q1 - 1), ka = seg(k0), kz = seg(k1 - 1);
  if (qz < ka || kz < qa) return BlockClass::kEmpty;
  return qa == qz && ka == kz && qa == ka ? BlockClass::kFull : BlockClass::kPartial;
}

struct Chunked {
  int64_t chunk = 0;  // > 0
  bool operator()(int64_t, int64_t, int64_t q, int64_t k) const { return k <= q && q / chunk == k / chunk; }
  BlockClass classify(int64_t, int64_t, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    const auto seg = [this](int64_t pos) { return pos / chunk; };
    return block_and(causal_block_class(q0, q1, k0, k1), same_segment_class(seg, q0, q1, k0, k1));
  }
};

class Document {
 public:
  Document() = default;
  // Document lengths (each > 0) in order: positions [0, l0) are document 0, [l0, l0 + l1) document 1...
  explicit Document(std::span<const int64_t> lengths);
  // Index of the document holding `pos` (the last one for positions past the end).
  int64_t segment(int64_t pos) const;
  bool operator()(int64_t, int64_t, int64_t q, int64_t k) const { return k <= q && segment(q) == segment(k); }
  BlockClass classify(int64_t, int64_t, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    const auto seg = [this](int64_t pos) { return segment(pos); };
    return block_and(causal_block_class(q0, q1, k0, k1), same_segment_class(seg, q0, q1, k0, k1));
  }

 private:
  std::vector<int64_t> ends_;  // exclusive end position of each document but the last
};

template <class M>
concept ClassifiableMask = requires(const M& m, int64_t i) {
  { m.classify(i, i, i, i, i, i) } -> std::same_as<BlockClass>;
};

template <class A, class B>
struct And {
  A a;
  B b;
  bool operator()(int64_t bi, int64_t h, int64_t q, int64_t k) const { return a(bi, h, q, k) && b(bi, h, q, k); }
  BlockClass classify(int64_t bi, int64_t h, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const
    requires ClassifiableMask<A> && ClassifiableMask<B>
  {
    return block_and(a.classify(bi, h, q0, q1, k0, k1), b.classify(bi, h, q0, q1, k0, k1));
  }
};

template <class A, class B>
struct Or {
  A a;
  B b;
  bool operator()(int64_t bi, int64_t h, int64_t q, int64_t k) const { return a(bi, h, q, k) || b(bi, h, q, k); }
  BlockClass classify(int64_t bi, int64_t h, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const
    requires ClassifiableMask<A> && ClassifiableMask<B>
  {
    return block_or(a.classify(bi, h, q0, q1, k0, k1), b.classify(bi, h, q0, q1, k0, k1));
  }
};

template <class A, class B>
And<A, B> mask_and(A a, B b) {
  return {std::move(a), std::move(b)};
}
template <class A, class B>
Or<A, B> mask_or(A a, B b) {
  return {std::move(a), std::move(b)};
}

using NoScore = ::ctx::NoScore;

struct SoftCap {
  float cap = 0.0f;  // > 0
  float operator()(float s, int64_t, int64_t, int64_t, int64_t) const { return cap * std::tanh(s / cap); }
};

// ALiBi slopes of `num_heads` heads (Press et al.; HF transformers' get_slopes / build_alibi_tensor):
// for a power of two n, slope_h = 2^(-8 (h + 1) / n); otherwise the slopes of the closest lower
// power of two c, followed by every other slope of 2c (2^(-4 (2i + 1) / c), i = 0, 1, ...).
std::vector<float> alibi_slopes(int64_t num_heads);

struct Alibi {
  std::vector<float> slopes;  // per query head
  explicit Alibi(int64_t num_heads) : slopes(alibi_slopes(num_heads)) {}
  float operator()(float s, int64_t, int64_t h, int64_t q, int64_t k) const {
    return s + slopes[size_t(h)] * float(k - q);
  }
};

// score_then(a, b): b applied to the result of a.
template <class A, class B>
struct Then {
  A a;
  B b;
  float operator()(float s, int64_t bi, int64_t h, int64_t q, int64_t k) const {
    return b(a(s, bi, h, q, k), bi, h, q, k);
  }
};
template <class A, class B>
Then<A, B> score_then(A a, B b) {
  return {std::move(a), std::move(b)};
}

}  // namespace flex

class BlockMask {
 public:
  struct Counts {
    int64_t full = 0, partial = 0, empty = 0;
  };

  BlockMask() = default;

  // Classifies the blocks of positions [0, q_len) x [0, kv_len) (blocks at the ends are clipped to
  // the lengths) for batch indices [0, batch) and query heads [0, heads); batch = 1 / heads = 1 mean
  // the mask does not depend on b / h: it is evaluated with 0 and the block mask broadcasts.
  template <class MaskMod>
  static BlockMask build(const MaskMod& mask, int64_t q_len, int64_t kv_len, int64_t block_q = 64,
                         int64_t block_kv = 64, int64_t batch = 1, int64_t heads = 1);

  int64_t q_len() const { return q_len_; }
  int64_t kv_len() const { return kv_len_; }
  int64_t block_q() const { return block_q_; }
  int64_t block_kv() const { return block_kv_; }
  int64_t num_q_blocks() const { return nqb_; }
  int64_t num_kv_blocks() const { return nkb_; }
  int64_t batch() const { return batch_; }
  int64_t heads() const { return heads_; }

  BlockClass at(int64_t b, int64_t h, int64_t qb, int64_t kb) const {
    return classes_[size_t(index(batch_ == 1 ? 0 : b, heads_ == 1 ? 0 : h, qb, kb))];
  }
  // The tile of heads [h0, h0 + nh): EMPTY or FULL when every head agrees, else PARTIAL.
  BlockClass operator()(int64_t b, int64_t h0, int64_t nh, int64_t qb, int64_t kb) const {
    BlockClass c = at(b, h0, qb, kb);
    if (heads_ > 1)
      for (int64_t h = h0 + 1; h < h0 + nh && c != BlockClass::kPartial; ++h)
        if (at(b, h, qb, kb) != c) c = BlockClass::kPartial;
    return c;
  }
  Counts counts() const;

 private:
  int64_t index(int64_t b, int64_t h, int64_t qb, int64_t kb) const { return ((b * heads_ + h) * nqb_ + qb) * nkb_ + kb; }

  int64_t q_len_ = 0, kv_len_ = 0, block_q_ = 64, block_kv_ = 64, nqb_ = 0, nkb_ = 0, batch_ = 1, heads_ = 1;
  std::vector<BlockClass> classes_;
};

template <class MaskMod>
BlockMask BlockMask::build(const MaskMod& mask, int64_t q_len, int64_t kv_len, int64_t block_q, int64_t block_kv,
                           int64_t batch, int64_t heads) {
  CTX_CHECK(q_len >= 0 && kv_len >= 0 && block_q > 0 && block_kv > 0 && batch > 0 && heads > 0);
  BlockMask bm;
  bm.q_len_ = q_len, bm.kv_len_ = kv_len, bm.block_q_ = block_q, bm.block_kv_ = block_kv;
  bm.nqb_ = (q_len + block_q - 1) / block_q, bm.nkb_ = (kv_len + block_kv - 1) / block_kv;
  bm.batch_ = batch, bm.heads_ = heads;
  bm.classes_.assign(size_t(batch * heads * bm.nqb_ * bm.nkb_), BlockClass::kPartial);
  const int64_t rows = batch * heads * bm.nqb_;
#pragma omp parallel for schedule(dynamic) if (rows * bm.nkb_ >= 4096)
  for (int64_t x = 0; x < rows; ++x) {
    const int64_t qb = x % bm.nqb_, h = x / bm.nqb_ % heads, b = x / bm.nqb_ / heads;
    const int64_t q0 = qb * block_q, q1 = std::min(q0 + block_q, q_len);
    for (int64_t kb = 0; kb < bm.nkb_; ++kb) {
      const int64_t k0 = kb * block_kv, k1 = std::min(k0 + block_kv, kv_len);
      BlockClass c;
      if constexpr (flex::ClassifiableMask<MaskMod>) {
        c = mask.classify(b, h, q0, q1, k0, k1);
      } else {
        bool any_true = false, any_false = false;
        for (int64_t q = q0; q < q1 && !(any_true && any_false); ++q)
          for (int64_t k = k0; k < k1; ++k) {
            (mask(b, h, q, k) ? any_true : any_false) = true;
            if (any_true && any_false) break;
          }
        c = any_true && any_false ? BlockClass::kPartial : any_true ? BlockClass::kFull : BlockClass::kEmpty;
      }
      bm.classes_[size_t(bm.index(b, h, qb, kb))] = c;
    }
  }
  return bm;
}

// Attention of every new row of `batch` (contiguous KV layout) under `mask` and `score`, skipping the
// EMPTY tiles of `block_mask` and masking only its PARTIAL ones; tiles are the block mask's blocks. The
// block mask must cover every sequence (kv.length <= q_len and kv_len; batch_index < batch and
// num_heads == heads unless those are 1) and must have been built from `mask` (or a mask whose FULL /
// EMPTY blocks are FULL / EMPTY for `mask` as well). block_mask == nullptr: no block sparsity, every
// tile of options.block_q x options.block_kv is masked per element. options.num_splits as in
// tiled_attention.h.
template <class MaskMod, class ScoreMod>
void flex_attention(const AttentionParams& p, std::span<const AttentionSequence> batch, const MaskMod& mask,
                    const ScoreMod& score, const BlockMask* block_mask, const TileOptions& options = {}) {
  if (block_mask == nullptr) {
    tiled_attention(p, batch, mask, score, DenseBlocks{options.block_q, options.block_kv}, options.num_splits);
    return;
  }
  for (const AttentionSequence& s : batch) {
    CTX_CHECK(s.kv.length <= block_mask->q_len() && s.kv.length <= block_mask->kv_len(),
              "block mask built for ", block_mask->q_len(), " x ", block_mask->kv_len(), " positions, sequence has ",
              s.kv.length);
    CTX_CHECK(block_mask->batch() == 1 || s.batch_index < block_mask->batch());
  }
  CTX_CHECK(block_mask->heads() == 1 || block_mask->heads() == p.num_heads);
  tiled_attention(p, batch, mask, score, *block_mask, options.num_splits);
}

}  // namespace ctx
