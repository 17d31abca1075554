#include "core/model/attention_cpu.h"

#include <Eigen/Core>
#include <algorithm>
#include <vector>

namespace ctx {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using StridedMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using StridedOut = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
constexpr int64_t kQueryBlock = 64;

}  // namespace

void causal_attention_cpu(const AttentionParams& p, const float* q, int64_t n_new, int64_t past_len, const float* k,
                          const float* v, int64_t capacity, float* out) {
  const int64_t hd = p.head_dim, row = p.num_heads * hd, group = p.num_heads / p.num_kv_heads;
  const int64_t blocks = (n_new + kQueryBlock - 1) / kQueryBlock;
  const int64_t items = p.num_heads * blocks;
  // Serial when the whole problem is tiny: a parallel region costs more than it saves.
  const int64_t work = p.num_heads * n_new * (past_len + n_new) * hd;
#pragma omp parallel if (work >= (1 << 16))
  {
    RowMat scores;
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t h = item % p.num_heads, b = item / p.num_heads;
      const int64_t g = h / group;
      const int64_t q0 = b * kQueryBlock, q1 = std::min(n_new, q0 + kQueryBlock), nq = q1 - q0;
      // Keys any query of this block may see.
      const int64_t hi = past_len + q1;
      const int64_t lo = p.window > 0 ? std::max<int64_t>(0, past_len + q0 - p.window + 1) : 0;
      const int64_t nk = hi - lo;
      StridedMap Q(q + q0 * row + h * hd, nq, hd, Eigen::OuterStride<>(row));
      Eigen::Map<const RowMat> K(k + (g * capacity + lo) * hd, nk, hd);
      Eigen::Map<const RowMat> V(v + (g * capacity + lo) * hd, nk, hd);
      scores.resize(nq, nk);
      scores.noalias() = Q * K.transpose();
      for (int64_t i = 0; i < nq; ++i) {
        const int64_t pos = past_len + q0 + i;
        const int64_t first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
        // Visible keys of this row: [first, pos] in absolute positions.
        float* s = scores.data() + i * nk;
        const int64_t a = first - lo, e = pos - lo + 1;
        // Softmax over the visible keys with Eigen's vectorized exp; masked keys get weight 0.
        Eigen::Map<Eigen::ArrayXf> visible(s + a, e - a);
        const float mx = visible.maxCoeff() * p.scale;
        visible = (visible * p.scale - mx).exp();
        visible *= 1.0f / visible.sum();
        std::fill(s, s + a, 0.0f);
        std::fill(s + e, s + nk, 0.0f);
      }
      StridedOut O(out + q0 * row + h * hd, nq, hd, Eigen::OuterStride<>(row));
      O.noalias() = scores * V;
    }
  }
}

}  // namespace ctx
