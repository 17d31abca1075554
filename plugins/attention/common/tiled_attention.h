// FlashAttention-2 style tiled attention over a KV cache of either layout, shared by `flash` (the
// engine's causal/window mask, contiguous cache), `flex` (any mask_mod/score_mod) and `paged` (block
// tables). One template serves all, so `flex` with a causal mask runs the same code as `flash`, and
// `paged` differs only in where a tile's rows come from: a KV tile's rows are resolved to row pointers
// once per run of consecutive rows (one block-table lookup per block), so a tile may span blocks.
//
// Tiling. Query positions and key positions are cut into blocks aligned at absolute position 0
// (query block qb holds positions [qb*block_q, (qb+1)*block_q), likewise keys), so that a block
// mask built once for a length is valid for every sequence up to that length. A work item is
// (sequence, KV group, query block): its rows are the group's query heads x the block's query
// positions, so each K/V tile is loaded once for all heads of the group (GQA). For each KV block the
// block classifier says EMPTY (skipped), FULL (no per-element mask) or PARTIAL (mask evaluated per
// element); S = Q K^T for the tile (tile_kernels.h), the score mod per element (unless it is the
// identity), then an online-softmax step rescales the running output. Memory per thread is
// O(rows * (head_dim + block_kv)), never T x T.
//
// Decode (n_new <= kDecodeRows = 4 new rows: too few rows to keep the threads busy), split-KV as in
// Flash-Decoding: the non-empty KV blocks of a (sequence, group, query block) are cut into
// `num_splits` contiguous runs processed in parallel, each yielding per row (max m, sum l, unnormalized
// output o); tile::merge_splits combines them with the log-sum-exp rule, which is the exact unsplit
// softmax. num_splits = 0 picks ceil(2 * threads / items) splits when there are fewer items than
// threads, with at least 256 keys per split.
//
// A row that sees no key at all (only possible with user masks) yields 0, as FlexAttention does.
// Thread-safe: reads its inputs, writes only the out rows of the batch; parallel with OpenMP inside.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "core/attention/attention_backend.h"
#include "core/base/error.h"
#include "plugins/attention/common/tile_kernels.h"

namespace ctx {

// What a (query block, KV block) tile needs: nothing, the mask per element, or no mask at all.
enum class BlockClass : uint8_t { kEmpty = 0, kPartial = 1, kFull = 2 };

// Classes of `a & b` and `a | b` from the classes of a and b; PARTIAL where the classes alone cannot
// tell (always a safe answer: the kernel then evaluates the mask per element).
constexpr BlockClass block_and(BlockClass a, BlockClass b) {
  if (a == BlockClass::kEmpty || b == BlockClass::kEmpty) return BlockClass::kEmpty;
  return a == BlockClass::kFull && b == BlockClass::kFull ? BlockClass::kFull : BlockClass::kPartial;
}
constexpr BlockClass block_or(BlockClass a, BlockClass b) {
  if (a == BlockClass::kFull || b == BlockClass::kFull) return BlockClass::kFull;
  return a == BlockClass::kEmpty && b == BlockClass::kEmpty ? BlockClass::kEmpty : BlockClass::kPartial;
}
// A tile of positions q in [q0, q1), k in [k0, k1) (non-empty ranges) under kv_idx <= q_idx ...
constexpr BlockClass causal_block_class(int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  if (k0 > q1 - 1) return BlockClass::kEmpty;
  return k1 - 1 <= q0 ? BlockClass::kFull : BlockClass::kPartial;
}
// ... and under kv_idx > q_idx - window (the lower edge of a sliding window of `window` keys).
constexpr BlockClass key_window_block_class(int64_t window, int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  if (k1 - 1 <= q0 - window) return BlockClass::kEmpty;
  return k0 > q1 - 1 - window ? BlockClass::kFull : BlockClass::kPartial;
}

// The engine's base mask (attention_backend.h) as a mask mod: causal, and when window > 0 only the
// last `window` positions (kv_idx > q_idx - window).
struct CausalWindowMask {
  int64_t window = 0;
  bool operator()(int64_t, int64_t, int64_t q, int64_t k) const { return k <= q && (window <= 0 || k > q - window); }
  BlockClass classify(int64_t, int64_t, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    const BlockClass c = causal_block_class(q0, q1, k0, k1);
    return window > 0 ? block_and(c, key_window_block_class(window, q0, q1, k0, k1)) : c;
  }
};

// The identity score mod; kIdentity lets the kernel skip the per-element pass.
struct NoScore {
  static constexpr bool kIdentity = true;
  float operator()(float s, int64_t, int64_t, int64_t, int64_t) const { return s; }
};

struct TileOptions {
  int64_t block_q = 64, block_kv = 64;
  int64_t num_splits = 0;  // decode split-KV: 0 = auto, else at most this many (and at most one per KV block)
};

// Sequences with at most this many new rows take the split-KV decode path.
constexpr int64_t kDecodeRows = 4;

// Block classifier that evaluates a mask mod's interval classifier per tile:
// mask.classify(b, h, q0, q1, k0, k1) for each head of the tile, combined.
template <class Mask>
struct ClassifiedBlocks {
  const Mask& mask;
  int64_t bq, bkv;
  int64_t block_q() const { return bq; }
  int64_t block_kv() const { return bkv; }
  BlockClass operator()(int64_t b, int64_t h0, int64_t nh, int64_t qb, int64_t kb) const {
    BlockClass c = mask.classify(b, h0, qb * bq, (qb + 1) * bq, kb * bkv, (kb + 1) * bkv);
    for (int64_t h = h0 + 1; h < h0 + nh && c != BlockClass::kPartial; ++h) {
      const BlockClass ch = mask.classify(b, h, qb * bq, (qb + 1) * bq, kb * bkv, (kb + 1) * bkv);
      if (ch != c) c = BlockClass::kPartial;
    }
    return c;
  }
};

// Every tile PARTIAL: the mask is evaluated everywhere and nothing is skipped.
struct DenseBlocks {
  int64_t bq, bkv;
  int64_t block_q() const { return bq; }
  int64_t block_kv() const { return bkv; }
  BlockClass operator()(int64_t, int64_t, int64_t, int64_t, int64_t) const { return BlockClass::kPartial; }
};

namespace detail {

struct TileItem {
  int32_t seq = 0, group = 0;
  int64_t qb = 0, kb_lo = 0, kb_hi = 0;
  int32_t split = 0, splits = 1;
  int64_t partial = -1;  // offset of this unit's partial results (splits > 1)
};

struct TileWorkspace {
  std::vector<float> q, o, s, kt, m, l, corr;
  std::vector<const float*> k_rows, v_rows;
  TileWorkspace(int64_t rows, int64_t hd, int64_t lds)
      : q(size_t(rows * hd)), o(size_t(rows * hd)), s(size_t(rows * lds)), kt(size_t(hd * lds)), m(size_t(rows)),
        l(size_t(rows)), corr(size_t(rows)), k_rows(size_t(lds)), v_rows(size_t(lds)) {}
};

template <class T>
concept IdentityScore = requires { T::kIdentity; } && T::kIdentity;

// Query positions of block qb that are new rows of the sequence: [lo, hi).
inline std::pair<int64_t, int64_t> block_rows(const AttentionSequence& s, int64_t qb, int64_t bq) {
  const int64_t first = s.kv.length - s.n_new;
  return {std::max(qb * bq, first), std::min((qb + 1) * bq, s.kv.length)};
}

// One work item: every head of the group, every new query position of block qb, KV blocks
// [kb_lo, kb_hi). Writes the normalized output, or the partial (m, l, o) of its split.
template <class Mask, class Score, class Blocks>
void run_tile(const AttentionParams& p, const AttentionSequence& seq, const TileItem& it, const Mask& mask,
              const Score& score, const Blocks& blocks, TileWorkspace& ws, float* partials) {
  const int64_t G = p.num_heads / p.num_kv_heads, hd = p.head_dim, row = p.num_heads * hd;
  const int64_t bq = blocks.block_q(), bkv = blocks.block_kv(), lds = tile::padded(bkv);
  const KvView& kv = seq.kv;
  const int64_t L = kv.length, first = L - seq.n_new, b = seq.batch_index, h0 = int64_t(it.group) * G;
  const auto [q_lo, q_hi] = block_rows(seq, it.qb, bq);
  const int64_t nq = q_hi - q_lo, R = G * nq;  // row r = t * nq + i: head h0 + t, position q_lo + i

  float *q = ws.q.data(), *o = ws.o.data(), *s = ws.s.data(), *m = ws.m.data(), *l = ws.l.data();
  for (int64_t t = 0; t < G; ++t)
    for (int64_t i = 0; i < nq; ++i)
      std::copy_n(seq.q + (q_lo - first + i) * row + (h0 + t) * hd, hd, q + (t * nq + i) * hd);
  std::fill_n(o, R * hd, 0.0f);
  std::fill_n(m, R, -INFINITY);
  std::fill_n(l, R, 0.0f);

  for (int64_t kb = it.kb_lo; kb < it.kb_hi; ++kb) {
    const BlockClass cls = blocks(b, h0, G, it.qb, kb);
    if (cls == BlockClass::kEmpty) continue;
    const int64_t k0 = kb * bkv, n = std::min(k0 + bkv, L) - k0;
    if (n <= 0) continue;
    kv.for_each_run(k0, k0 + n, [&](int64_t pos, int64_t run) {
      const float *k = kv.key(it.group, pos), *v = kv.value(it.group, pos);
      for (int64_t j = 0; j < run; ++j) ws.k_rows[size_t(pos - k0 + j)] = k + j * hd, ws.v_rows[size_t(pos - k0 + j)] = v + j * hd;
    });
    tile::scores(q, R, ws.k_rows.data(), n, hd, p.scale, ws.kt.data(), s, lds);
    if constexpr (!IdentityScore<Score>) {
      for (int64_t t = 0; t < G; ++t)
        for (int64_t i = 0; i < nq; ++i) {
          float* sr = s + (t * nq + i) * lds;
          for (int64_t j = 0; j < n; ++j) sr[j] = score(sr[j], b, h0 + t, q_lo + i, k0 + j);
        }
    }
    if (cls == BlockClass::kPartial) {
      for (int64_t t = 0; t < G; ++t)
        for (int64_t i = 0; i < nq; ++i) {
          float* sr = s + (t * nq + i) * lds;
          for (int64_t j = 0; j < n; ++j)
            if (!mask(b, h0 + t, q_lo + i, k0 + j)) sr[j] = -INFINITY;
        }
    }
    tile::softmax_step(s, R, n, lds, m, l, ws.corr.data());
    tile::accumulate(s, R, n, lds, ws.v_rows.data(), hd, ws.corr.data(), o);
  }

  if (it.splits == 1) {
    for (int64_t t = 0; t < G; ++t)
      for (int64_t i = 0; i < nq; ++i)
        tile::normalize(o + (t * nq + i) * hd, l[t * nq + i], hd, seq.out + (q_lo - first + i) * row + (h0 + t) * hd);
    return;
  }
  // Partial layout of a unit: o [splits][R][hd], then m [splits][R], then l [splits][R].
  float* base = partials + it.partial;
  std::copy_n(o, R * hd, base + int64_t(it.split) * R * hd);
  std::copy_n(m, R, base + int64_t(it.splits) * R * hd + int64_t(it.split) * R);
  std::copy_n(l, R, base + int64_t(it.splits) * R * (hd + 1) + int64_t(it.split) * R);
}

}  // namespace detail

// Attention of every new row of `batch` (either KV layout) under mask(b, h, q_idx, kv_idx) and
// score(score, b, h, q_idx, kv_idx), with tiles classified by `blocks` (see ClassifiedBlocks).
// q_idx and kv_idx are absolute positions; h is the query head; b is the sequence's batch_index.
template <class Mask, class Score, class Blocks>
void tiled_attention(const AttentionParams& p, std::span<const AttentionSequence> batch, const Mask& mask,
                     const Score& score, const Blocks& blocks, int64_t num_splits) {
  const int64_t G = p.num_heads / p.num_kv_heads, hd = p.head_dim;
  const int64_t bq = blocks.block_q(), bkv = blocks.block_kv();
  CTX_CHECK(G > 0 && p.num_heads % p.num_kv_heads == 0 && hd > 0 && bq > 0 && bkv > 0);

  // Units (sequence, query block, group); decode units may be split along the KV blocks.
  int64_t units = 0, work = 0, max_rows = 0;
  for (const AttentionSequence& s : batch) {
    CTX_CHECK(s.n_new <= s.kv.length && s.kv.head_dim == hd);
    if (s.n_new == 0) continue;
    const int64_t first = s.kv.length - s.n_new;
    units += ((s.kv.length - 1) / bq - first / bq + 1) * p.num_kv_heads;
    work += s.n_new * s.kv.length;
    max_rows = std::max(max_rows, G * std::min(bq, s.n_new));
  }
  if (units == 0) return;
  const int64_t threads = omp_get_max_threads();
  const int64_t auto_splits = units >= threads ? 1 : (2 * threads + units - 1) / units;
  const int64_t min_blocks = std::max<int64_t>(1, 256 / bkv);

  std::vector<detail::TileItem> items;
  std::vector<detail::TileItem> merges;  // one per split unit (split = 0)
  int64_t partial_size = 0;
  std::vector<int64_t> nonempty;
  for (size_t si = 0; si < batch.size(); ++si) {
    const AttentionSequence& s = batch[si];
    if (s.n_new == 0) continue;
    const int64_t first = s.kv.length - s.n_new, kb_end = (s.kv.length + bkv - 1) / bkv;
    for (int64_t qb = first / bq; qb <= (s.kv.length - 1) / bq; ++qb)
      for (int64_t g = 0; g < p.num_kv_heads; ++g) {
        detail::TileItem it{int32_t(si), int32_t(g), qb, 0, kb_end, 0, 1, -1};
        if (s.n_new > kDecodeRows) {
          items.push_back(it);
          continue;
        }
        nonempty.clear();
        for (int64_t kb = 0; kb < kb_end; ++kb)
          if (blocks(s.batch_index, g * G, G, qb, kb) != BlockClass::kEmpty) nonempty.push_back(kb);
        const int64_t n = int64_t(nonempty.size());
        const int64_t want = num_splits > 0 ? num_splits : std::min(auto_splits, n / min_blocks);
        const int64_t splits = std::clamp<int64_t>(want, 1, std::max<int64_t>(1, n));
        if (splits == 1) {
          items.push_back(it);
          continue;
        }
        const auto [q_lo, q_hi] = detail::block_rows(s, qb, bq);
        const int64_t R = G * (q_hi - q_lo);
        it.splits = int32_t(splits);
        it.partial = partial_size;
        partial_size += splits * R * (hd + 2);
        merges.push_back(it);
        for (int64_t sp = 0; sp < splits; ++sp) {
          it.split = int32_t(sp);
          it.kb_lo = nonempty[size_t(sp * n / splits)];
          it.kb_hi = sp + 1 == splits ? kb_end : nonempty[size_t((sp + 1) * n / splits)];
          items.push_back(it);
        }
      }
  }

  std::vector<float> partials(static_cast<size_t>(partial_size));
  const int64_t n_items = int64_t(items.size());
  const bool parallel = n_items > 1 && work * p.num_heads * hd >= (1 << 16);
#pragma omp parallel if (parallel)
  {
    detail::TileWorkspace ws(max_rows, hd, tile::padded(bkv));
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_items; ++i) {
      const detail::TileItem& it = items[size_t(i)];
      detail::run_tile(p, batch[size_t(it.seq)], it, mask, score, blocks, ws, partials.data());
    }
  }

  // Split-KV reduction, one (row, head) at a time.
  const int64_t row = p.num_heads * hd;
  for (const detail::TileItem& u : merges) {
    const AttentionSequence& s = batch[size_t(u.seq)];
    const auto [q_lo, q_hi] = detail::block_rows(s, u.qb, bq);
    const int64_t nq = q_hi - q_lo, R = G * nq, first = s.kv.length - s.n_new;
    const float* base = partials.data() + u.partial;
    for (int64_t t = 0; t < G; ++t)
      for (int64_t i = 0; i < nq; ++i) {
        const int64_t r = t * nq + i;
        tile::merge_splits(base + u.splits * R * hd + r, base + u.splits * R * (hd + 1) + r, base + r * hd, u.splits,
                           R, hd, s.out + (q_lo - first + i) * row + (int64_t(u.group) * G + t) * hd);
      }
  }
}

// The engine's base mask (causal, and the sliding window of p.window) with tiles classified by
// interval arithmetic: what `flash` and `paged` run.
inline void causal_tiled_attention(const AttentionParams& p, std::span<const AttentionSequence> batch,
                                   const TileOptions& options) {
  const CausalWindowMask mask{p.window};
  tiled_attention(p, batch, mask, NoScore{}, ClassifiedBlocks<CausalWindowMask>{mask, options.block_q, options.block_kv},
                  options.num_splits);
}

}  // namespace ctx
