// Random attention problems over contiguous KV caches and a brute-force float64 reference that
// takes any mask/score functor (for the flash and flex tests).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/attention/attention_backend.h"

namespace ctx::test {

struct SeqShape {
  int64_t length = 0, n_new = 0;  // kv length and new query rows (n_new <= length)
};

// Q/K/V for a batch, each sequence with its own contiguous cache of capacity length + 5 (so that the
// per-head stride differs from the length).
struct AttentionProblem {
  AttentionParams p;
  std::vector<SeqShape> shapes;
  std::vector<std::vector<float>> q, k, v, out;

  AttentionProblem(AttentionParams params, std::vector<SeqShape> seqs, uint32_t seed, float q_scale = 1.0f)
      : p(params), shapes(std::move(seqs)) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const int64_t row = p.num_heads * p.head_dim;
    for (const SeqShape& s : shapes) {
      q.emplace_back(size_t(s.n_new * row));
      for (float& x : q.back()) x = q_scale * u(rng);
      const size_t kv = size_t(p.num_kv_heads * capacity(s) * p.head_dim);
      k.emplace_back(kv), v.emplace_back(kv);
      for (float& x : k.back()) x = u(rng);
      for (float& x : v.back()) x = u(rng);
      out.emplace_back(size_t(s.n_new * row), NAN);
    }
  }
  static int64_t capacity(const SeqShape& s) { return s.length + 5; }

  std::vector<AttentionSequence> batch() {
    std::vector<AttentionSequence> b;
    for (size_t i = 0; i < shapes.size(); ++i) {
      KvView view;
      view.layout = KvLayout::kContiguous;
      view.k = k[i].data(), view.v = v[i].data();
      view.length = shapes[i].length;
      view.num_kv_heads = p.num_kv_heads, view.head_dim = p.head_dim;
      view.capacity = capacity(shapes[i]);
      // batch_index deliberately not the position in the span (b must come from the sequence).
      b.push_back({q[i].data(), shapes[i].n_new, view, out[i].data(), int64_t(10 + i)});
    }
    return b;
  }

  void run(const AttentionBackend& backend) {
    for (auto& o : out) std::fill(o.begin(), o.end(), NAN);
    const auto b = batch();
    backend.forward(p, b);
  }

  // Float64 attention under mask(b, h, q_idx, kv_idx) and score(double score, b, h, q_idx, kv_idx);
  // rows that see no key are 0. Same layout as `out`.
  template <class Mask, class Score>
  std::vector<std::vector<double>> reference(const Mask& mask, const Score& score) const {
    std::vector<std::vector<double>> ref;
    const int64_t hd = p.head_dim, row = p.num_heads * hd, G = p.num_heads / p.num_kv_heads;
    for (size_t si = 0; si < shapes.size(); ++si) {
      const SeqShape& s = shapes[si];
      const int64_t b = int64_t(10 + si), cap = capacity(s);
      ref.emplace_back(size_t(s.n_new * row), 0.0);
      for (int64_t i = 0; i < s.n_new; ++i)
        for (int64_t h = 0; h < p.num_heads; ++h) {
          const int64_t pos = s.length - s.n_new + i, g = h / G;
          const float* qr = q[si].data() + i * row + h * hd;
          std::vector<double> w(size_t(s.length), 0.0);
          double mx = -INFINITY;
          for (int64_t j = 0; j < s.length; ++j) {
            if (!mask(b, h, pos, j)) {
              w[size_t(j)] = -INFINITY;
              continue;
            }
            const float* kr = k[si].data() + (g * cap + j) * hd;
            double dot = 0;
            for (int64_t d = 0; d < hd; ++d) dot += double(qr[d]) * double(kr[d]);
            w[size_t(j)] = score(dot * double(p.scale), b, h, pos, j);
            mx = std::max(mx, w[size_t(j)]);
          }
          if (mx == -INFINITY) continue;
          double sum = 0;
          for (double& x : w) sum += (x = x == -INFINITY ? 0.0 : std::exp(x - mx));
          double* o = ref.back().data() + i * row + h * hd;
          for (int64_t j = 0; j < s.length; ++j) {
            if (w[size_t(j)] == 0.0) continue;
            const float* vr = v[si].data() + (g * cap + j) * hd;
            for (int64_t d = 0; d < hd; ++d) o[d] += w[size_t(j)] / sum * double(vr[d]);
          }
        }
    }
    return ref;
  }

  // max |out - ref| / max |ref| over the batch (every output must be finite).
  double relative_error(const std::vector<std::vector<double>>& ref) const {
    double diff = 0, scale = 0;
    for (size_t si = 0; si < out.size(); ++si)
      for (size_t x = 0; x < out[si].size(); ++x) {
        if (!std::isfinite(out[si][x])) return INFINITY;
        diff = std::max(diff, std::abs(double(out[si][x]) - ref[si][x]));
        scale = std::max(scale, std::abs(ref[si][x]));
      }
    return scale > 0 ? diff / scale : diff;
  }
  std::vector<std::vector<double>> outputs() const {
    std::vector<std::vector<double>> r;
    for (const auto& o : out) r.emplace_back(o.begin(), o.end());
    return r;
  }
};

// The engine's base mask and the identity score, written out for the reference.
inline auto causal_window(int64_t window) {
  return [window](int64_t, int64_t, int64_t q, int64_t k) { return k <= q && (window <= 0 || k > q - window); };
}
inline double no_score(double s, int64_t, int64_t, int64_t, int64_t) { return s; }

}  // namespace ctx::test
