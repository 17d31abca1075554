// `eager`: the numerical reference. For each sequence and head it materialises the full score matrix
// [n_new, kv_length], masks it, applies a plain softmax and multiplies by V, accumulating in the
// chosen precision (`precision=double` is what the conformance tests compare every backend against).
// Reads either KV layout through the view.
#include <cmath>
#include <vector>

#include "core/plugin/catalog.h"
#include "plugins/attention/common/visible_range.h"

namespace ctx {
namespace {

template <class Acc>
void eager_sequence_head(const AttentionParams& p, const AttentionSequence& s, int64_t h) {
  const int64_t hd = p.head_dim, row = p.num_heads * hd, L = s.kv.length;
  const int64_t g = h / (p.num_heads / p.num_kv_heads);
  std::vector<Acc> scores(size_t(s.n_new * L));
  for (int64_t i = 0; i < s.n_new; ++i) {
    const float* q = s.q + i * row + h * hd;
    Acc* sr = scores.data() + i * L;
    const int64_t pos = query_position(s, i), first = first_visible_key(p, pos);
    Acc mx = -INFINITY;
    for (int64_t j = 0; j < L; ++j) {
      if (j < first || j > pos) {
        sr[j] = -INFINITY;
        continue;
      }
      const float* k = s.kv.key(g, j);
      Acc dot = 0;
      for (int64_t d = 0; d < hd; ++d) dot += Acc(q[d]) * Acc(k[d]);
      sr[j] = dot * Acc(p.scale);
      mx = std::max(mx, sr[j]);
    }
    Acc sum = 0;
    for (int64_t j = 0; j < L; ++j) sum += (sr[j] = sr[j] == -INFINITY ? Acc(0) : std::exp(sr[j] - mx));
    std::vector<Acc> o(size_t(hd), Acc(0));
    for (int64_t j = first; j <= pos; ++j) {
      const float* v = s.kv.value(g, j);
      const Acc w = sr[j] / sum;
      for (int64_t d = 0; d < hd; ++d) o[size_t(d)] += w * Acc(v[d]);
    }
    float* out = s.out + i * row + h * hd;
    for (int64_t d = 0; d < hd; ++d) out[d] = float(o[size_t(d)]);
  }
}

class EagerAttention final : public AttentionBackend {
 public:
  explicit EagerAttention(bool double_precision) : double_(double_precision) {}
  Support supports(const AttentionParams& p, KvLayout) const override { return check_shape(p); }
  void forward(const AttentionParams& p, std::span<const AttentionSequence> batch) const override {
    const int64_t items = int64_t(batch.size()) * p.num_heads;
#pragma omp parallel for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const auto& s = batch[size_t(item / p.num_heads)];
      const int64_t h = item % p.num_heads;
      if (double_) {
        eager_sequence_head<double>(p, s, h);
      } else {
        eager_sequence_head<float>(p, s, h);
      }
    }
  }

 private:
  bool double_;
};

}  // namespace

void register_eager(Catalog& catalog) {
  catalog.attention.add(
      {"eager", 1, "reference: materialises the score matrix, plain softmax (any KV layout)",
       {ParamSpec::Choice("precision", "float", {"float", "double"}, "accumulation precision (double: test reference)")}},
      [](const Params& params) { return std::make_unique<EagerAttention>(params.get_string("precision") == "double"); });
}

}  // namespace ctx
