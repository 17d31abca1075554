#include "plugins/attention/common/online_softmax.h"

#include <algorithm>
#include <cmath>

#include "plugins/attention/common/vec_ops.h"

namespace ctx {
namespace {

constexpr int64_t kChunk = 64;

using vec::dot;
using vec::scale_axpy;

}  // namespace

void attend_row_online(const float* q, const KvView& kv, int64_t g, int64_t first, int64_t last, float scale,
                       float* out) {
  const int64_t hd = kv.head_dim;
  float scores[kChunk];
  float running_max = -INFINITY, running_sum = 0.0f;
  std::fill(out, out + hd, 0.0f);
  for (int64_t j0 = first; j0 <= last;) {
    // A chunk of keys stored as consecutive rows.
    const int64_t n = std::min(kChunk, kv.run_length(j0, last + 1));
    const float* k = kv.key(g, j0);
    const float* v = kv.value(g, j0);
    float chunk_max = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      scores[j] = dot(q, k + j * hd, hd) * scale;
      chunk_max = std::max(chunk_max, scores[j]);
    }
    const float new_max = std::max(running_max, chunk_max);
    const float correction = std::exp(running_max - new_max);  // 0 on the first chunk
    running_sum *= correction;
    for (int64_t j = 0; j < n; ++j) {
      const float w = std::exp(scores[j] - new_max);
      running_sum += w;
      scale_axpy(out, j == 0 ? correction : 1.0f, w, v + j * hd, hd);
    }
    running_max = new_max;
    j0 += n;
  }
  const float inv = 1.0f / running_sum;
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

}  // namespace ctx

#include <utility>
#include <vector>

#include "plugins/attention/common/visible_range.h"

namespace ctx {

void attend_batch_online(const AttentionParams& p, std::span<const AttentionSequence> batch) {
  std::vector<std::pair<int32_t, int64_t>> rows;  // (sequence, query row)
  int64_t work = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    for (int64_t i = 0; i < batch[s].n_new; ++i) rows.emplace_back(int32_t(s), i);
    work += batch[s].n_new * batch[s].kv.length;
  }
  const int64_t row = p.num_heads * p.head_dim, group = p.num_heads / p.num_kv_heads;
  const int64_t items = int64_t(rows.size()) * p.num_heads;
#pragma omp parallel for schedule(dynamic, 4) if (work * p.num_heads * p.head_dim >= (1 << 16))
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
