#include "tests/gpu/attention_reference.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/base/dtype.h"

namespace ctx::cuda::attention_ref {
namespace {

// Whether query position q sees key position k under a flex mask, element by element from the named
// masks' definitions (flex_attention.h), not from the intervals the kernels use.
bool flex_visible(const FlexMask& m, int64_t q, int64_t k) {
  auto doc = [&](int64_t p) {
    int d = 0;
    while (d + 1 < m.documents && m.starts[d + 1] <= p) ++d;
    return d;
  };
  std::vector<bool> stack;
  for (int i = 0; i < m.count; ++i) {
    const int64_t a = m.args[i];
    switch (m.ops[i]) {
      case FlexMask::kCausal: stack.push_back(k <= q); break;
      case FlexMask::kSlidingWindow: stack.push_back(k <= q && k > q - a); break;
      case FlexMask::kPrefixLm: stack.push_back(k < a || k <= q); break;
      case FlexMask::kChunked: stack.push_back(k <= q && q / a == k / a); break;
      case FlexMask::kDocument: stack.push_back(k <= q && doc(q) == doc(k)); break;
      case FlexMask::kKeyWindow: stack.push_back(k > q - a); break;
      default: {
        const bool y = stack.back();
        stack.pop_back();
        stack.back() = m.ops[i] == FlexMask::kAnd ? stack.back() && y : stack.back() || y;
      }
    }
  }
  return stack.back();
}

// The score mod's ops in double from their definitions (flex_attention.h): softcap cap * tanh(s /
// cap), alibi s + slope_h (k - q) with slope_h = 2^(-8 (h + 1) / n) for a power of two n heads, else
// those of the closest lower power of two c followed by 2^(-4 (2i + 1) / c), i = 0, 1, ...
double score_mod(const ScoreMod& m, double s, int64_t h, int64_t heads, int64_t q, int64_t k) {
  int64_t c = 1;
  while (2 * c <= heads) c *= 2;
  const double slope = h < c ? std::exp2(-8.0 * double(h + 1) / double(c)) : std::exp2(-4.0 * double(2 * (h - c) + 1) / double(c));
  for (int i = 0; i < m.count; ++i)
    s = m.ops[i] == ScoreMod::kSoftcap ? double(m.softcap) * std::tanh(s / double(m.softcap)) : s + slope * double(k - q);
  return s;
}

// One sequence: queries at positions length - queries .. length - 1; query t sees the keys <= its
// position within the window, or its flex mask's among all cached keys. spread[i] = sum_j w_j |v_j|.
std::vector<double> one_sequence(const GpuAttentionCase& c, const std::vector<float>& q, const std::vector<float>& k,
                                 const std::vector<float>& v, std::vector<double>* spread) {
  const int64_t hd = c.head_dim, group = c.heads / c.kv_heads;
  const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(double(hd));
  std::vector<double> out(size_t(c.queries * c.heads * hd));
  if (spread) spread->assign(out.size(), 0.0);
  for (int64_t t = 0; t < c.queries; ++t) {
    const int64_t pos = c.length - c.queries + t;
    std::vector<int64_t> keys;
    for (int64_t j = 0; j < c.length; ++j) {
      const bool in_window = c.window <= 0 || j > pos - c.window;
      if (in_window && (c.flex.empty() ? j <= pos : flex_visible(c.flex, pos, j))) keys.push_back(j);
    }
    for (int64_t h = 0; h < c.heads; ++h) {
      const float* qr = q.data() + (t * c.heads + h) * hd;
      const int64_t kvh = h / group;
      std::vector<double> s;
      double mx = -INFINITY;
      for (int64_t j : keys) {
        const float* kr = k.data() + (j * c.kv_heads + kvh) * hd;
        double d = 0;
        for (int64_t e = 0; e < hd; ++e) d += double(qr[e]) * kr[e];
        s.push_back(score_mod(c.score_mod, d * scale, h, c.heads, pos, j));
        mx = std::max(mx, s.back());
      }
      double den = 0;
      for (double& x : s) den += (x = std::exp(x - mx));
      double* o = out.data() + (t * c.heads + h) * hd;
      for (size_t i = 0; i < keys.size(); ++i) {
        const float* vr = v.data() + (keys[i] * c.kv_heads + kvh) * hd;
        for (int64_t e = 0; e < hd; ++e) o[e] += s[i] / den * vr[e];
        if (spread)
          for (int64_t e = 0; e < hd; ++e) (*spread)[size_t((t * c.heads + h) * hd + e)] += s[i] / den * std::fabs(vr[e]);
      }
    }
  }
  return out;
}

}  // namespace

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

std::vector<float> random_bf16(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = round_bf16(d(rng));
  return v;
}

Inputs random_inputs(const GpuAttentionCase& c, uint32_t seed) {
  int64_t rows = c.queries, positions = c.length;
  if (!c.batch_lengths.empty()) {
    rows = int64_t(c.batch_lengths.size()), positions = 0;
    for (int64_t l : c.batch_lengths) positions += l;
  }
  const size_t kv = size_t(positions * c.kv_heads * c.head_dim);
  return {random_bf16(size_t(rows * c.heads * c.head_dim), seed, 2.f), random_bf16(kv, seed + 1, 1.f),
          random_bf16(kv, seed + 2, 1.f)};
}

std::vector<double> reference_attention(const GpuAttentionCase& c, const std::vector<float>& q,
                                        const std::vector<float>& k, const std::vector<float>& v,
                                        std::vector<double>* spread) {
  if (c.batch_lengths.empty()) return one_sequence(c, q, k, v, spread);
  if (spread) spread->clear();
  const size_t q_row = size_t(c.heads * c.head_dim), kv_row = size_t(c.kv_heads * c.head_dim);
  std::vector<double> out;
  size_t first = 0;
  for (size_t s = 0; s < c.batch_lengths.size(); ++s) {
    GpuAttentionCase one = c;
    one.batch_lengths.clear(), one.length = c.batch_lengths[s], one.queries = 1;
    const size_t len = size_t(one.length);
    const std::vector<float> qs(q.begin() + long(s * q_row), q.begin() + long((s + 1) * q_row));
    const std::vector<float> ks(k.begin() + long(first * kv_row), k.begin() + long((first + len) * kv_row));
    const std::vector<float> vs(v.begin() + long(first * kv_row), v.begin() + long((first + len) * kv_row));
    std::vector<double> sp;
    const auto o = one_sequence(one, qs, ks, vs, spread ? &sp : nullptr);
    out.insert(out.end(), o.begin(), o.end());
    if (spread) spread->insert(spread->end(), sp.begin(), sp.end());
    first += len;
  }
  return out;
}

Deviation compare_to_reference(const std::vector<float>& got, const std::vector<double>& want,
                               const std::vector<double>* spread) {
  double max_ref = 0;
  for (double x : want) max_ref = std::max(max_ref, std::fabs(x));
  Deviation d;
  d.bad = got.size() == want.size() ? 0 : std::max(got.size(), want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    d.worst = std::max(d.worst, err / max_ref);
    const double weights = spread ? std::ldexp((*spread)[i], -9) : 0.0;
    if (!(err <= std::ldexp(std::fabs(want[i]), -8) + 1e-3 * max_ref + weights)) ++d.bad;
  }
  return d;
}

}  // namespace ctx::cuda::attention_ref
