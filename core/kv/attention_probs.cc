#include "core/kv/attention_probs.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>

namespace ctx {

void accumulate_attention(const KvStep& s, int64_t row_begin, int64_t row_end, std::vector<std::vector<float>>& out) {
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t len = s.kv.length, hd = s.head_dim, group = s.num_heads / s.num_kv_heads;
  const int64_t chunk = 64;  // query rows per score block
  out.resize(size_t(s.num_kv_heads));
  for (auto& o : out) o.resize(size_t(len), 0.0f);
  const float inv_group = 1.0f / float(group);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t g = 0; g < s.num_kv_heads; ++g) {
    RowMat k(len, hd);  // this head's keys as one matrix, whatever the cache layout
    s.kv.for_each_run(0, len, [&](int64_t pos, int64_t n) {
      std::memcpy(k.data() + pos * hd, s.kv.key(g, pos), size_t(n * hd) * sizeof(float));
    });
    Eigen::Map<Eigen::ArrayXf> acc(out[size_t(g)].data(), len);
    for (int64_t r0 = row_begin; r0 < row_end; r0 += chunk) {
      const int64_t rows = std::min(chunk, row_end - r0);
      const int64_t visible_max = len - s.n_new + r0 + rows;  // causal over stored indices
      RowMat q(rows * group, hd);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < group; ++i)
          std::memcpy(q.row(r * group + i).data(), s.q + ((r0 + r) * s.num_heads + g * group + i) * hd,
                      size_t(hd) * sizeof(float));
      RowMat scores = (q * k.topRows(visible_max).transpose()) * s.scale;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t visible = len - s.n_new + r0 + r + 1;
        for (int64_t i = 0; i < group; ++i) {
          auto row = scores.row(r * group + i).head(visible).array();
          row = (row - row.maxCoeff()).exp();
          acc.head(visible) += row.transpose() * (inv_group / row.sum());
        }
      }
    }
  }
}

}  // namespace ctx
