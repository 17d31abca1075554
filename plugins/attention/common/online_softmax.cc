#include "plugins/attention/common/online_softmax.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "plugins/attention/common/vec_ops.h"
#include "plugins/attention/common/visible_range.h"

namespace ctx {
namespace {

constexpr int64_t kChunk = 64;  // keys per softmax update
constexpr int64_t kPrefetch = 32;  // keys ahead

inline void prefetch_row(const float* row, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) _mm_prefetch(reinterpret_cast<const char*>(row + i), _MM_HINT_T0);
}

using vec::dot;
using vec::scale_axpy;

// Running state of one query row's online softmax: max and sum of exp(score - max), and the
// unnormalised output out[head_dim] (divide by sum at the end).
struct OnlineSoftmaxState {
  float max;
  float sum;
  float* out;
};

// Folds the scaled scores of n more keys into `st`: raises the running max, rescales sum and out by
// the correction, and turns scores[j] into the weights exp(score - max) (added to sum). The caller
// then adds weights[j] * v_j to st.out.
void online_softmax_update(float* scores, int64_t n, int64_t head_dim, OnlineSoftmaxState& st) {
  const float new_max = std::max(st.max, *std::max_element(scores, scores + n));
  const float correction = std::exp(st.max - new_max);  // 0 on the first update
  st.sum *= correction;
  for (int64_t d = 0; d < head_dim; ++d) st.out[d] *= correction;
  for (int64_t j = 0; j < n; ++j) st.sum += (scores[j] = std::exp(scores[j] - new_max));
  st.max = new_max;
}

// Folds n <= kChunk keys (row pointers k_rows[j], v_rows[j]) into `st`, prefetching the rows named
// in k_ahead/v_ahead (null entries skipped) meanwhile.
void online_softmax_chunk(const float* q, const float* const* k_rows, const float* const* v_rows, int64_t n,
                          int64_t head_dim, float scale, const float* const* k_ahead, const float* const* v_ahead,
                          OnlineSoftmaxState& st) {
  float scores[kChunk];
  for (int64_t j = 0; j < n; ++j) {
    if (k_ahead[j]) prefetch_row(k_ahead[j], head_dim);
    scores[j] = dot(q, k_rows[j], head_dim) * scale;
  }
  online_softmax_update(scores, n, head_dim, st);
  for (int64_t j = 0; j < n; ++j) {
    if (v_ahead[j]) prefetch_row(v_ahead[j], head_dim);
    scale_axpy(st.out, 1.0f, scores[j], v_rows[j], head_dim);
  }
}

}  // namespace


void attend_row_online(const float* q, const KvView& kv, int64_t g, int64_t first, int64_t last, float scale,
                       float* out) {
  const int64_t hd = kv.head_dim;
  // Row pointers of the current and the next chunk (double-buffered), resolved once per run of
  // consecutive rows: a paged cache costs one block-table lookup per block, not per key, and a chunk
  // spans several blocks so the softmax bookkeeping stays per chunk. Rows kPrefetch keys ahead are
  // prefetched, which also covers the jump to the next block.
  const float* rows[2][2][kChunk];     // [buffer][k or v][key]
  const float* ahead[2][kChunk];       // [k or v][key]: the row kPrefetch keys later, or null
  auto resolve = [&](int64_t j0, int64_t n, const float* (*dst)[kChunk]) {
    kv.for_each_run(j0, j0 + n, [&](int64_t pos, int64_t r) {
      const float* k = kv.key(g, pos);
      const float* v = kv.value(g, pos);
      for (int64_t i = 0; i < r; ++i) dst[0][pos - j0 + i] = k + i * hd, dst[1][pos - j0 + i] = v + i * hd;
    });
  };
  OnlineSoftmaxState st{-INFINITY, 0.0f, out};
  std::fill(out, out + hd, 0.0f);
  int cur = 0;
  resolve(first, std::min(kChunk, last - first + 1), rows[cur]);
  for (int64_t j0 = first; j0 <= last; j0 += kChunk, cur ^= 1) {
    const int64_t n = std::min(kChunk, last - j0 + 1);
    const int64_t next_n = std::max<int64_t>(0, std::min(kChunk, last - (j0 + kChunk) + 1));
    if (next_n > 0) resolve(j0 + kChunk, next_n, rows[cur ^ 1]);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t a = j + kPrefetch;
      for (int kv_index = 0; kv_index < 2; ++kv_index)
        ahead[kv_index][j] = a < n ? rows[cur][kv_index][a] : (a - kChunk < next_n ? rows[cur ^ 1][kv_index][a - kChunk] : nullptr);
    }
    online_softmax_chunk(q, rows[cur][0], rows[cur][1], n, hd, scale, ahead[0], ahead[1], st);
  }
  const float inv = 1.0f / st.sum;
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

void attend_batch_online(const AttentionParams& p, std::span<const AttentionSequence> batch) {
  std::vector<std::pair<int32_t, int64_t>> rows;  // (sequence, query row)
  int64_t work = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    for (int64_t i = 0; i < batch[s].n_new; ++i) rows.emplace_back(int32_t(s), i);
    work += batch[s].n_new * batch[s].kv.length;
  }
  const int64_t row = p.num_heads * p.head_dim, group = p.num_heads / p.num_kv_heads;
  const int64_t items = int64_t(rows.size()) * p.num_heads;
#pragma omp parallel for schedule(dynamic, 1) if (work * p.num_heads * p.head_dim >= (1 << 16))
  for (int64_t item = 0; item < items; ++item) {
    const auto [s, i] = rows[size_t(item / p.num_heads)];
    const int64_t h = item % p.num_heads;
    const AttentionSequence& seq = batch[size_t(s)];
    const int64_t pos = query_position(seq, i);
    attend_row_online(seq.q + i * row + h * p.head_dim, seq.kv, h / group, first_visible_key(p, pos), pos, p.scale,
                      seq.out + i * row + h * p.head_dim);
  }
}

}  // namespace ctx
