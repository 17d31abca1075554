#include "core/model/mamba2_layer.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"
#include "core/cpu/linear.h"

namespace ctx {
namespace {

float silu(float v) { return v / (1.0f + std::exp(-v)); }

// torch.nn.functional.softplus with its default threshold: linear above 20.
float softplus(float v) { return v > 20.0f ? v : std::log1p(std::exp(v)); }

float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

}  // namespace

Mamba2Mixer::Mamba2Mixer(const Mamba2Config& config, float norm_eps, Mamba2Scan scan)
    : c_(config), eps_(norm_eps), scan_(scan) {
  CTX_CHECK(c_.num_heads > 0 && c_.head_dim > 0 && c_.state_size > 0 && c_.conv_kernel > 0 && c_.chunk_size > 0);
  CTX_CHECK(c_.num_groups > 0 && c_.num_heads % c_.num_groups == 0);
}

float Mamba2Mixer::step_size(const Mamba2Weights& w, int64_t row, int64_t head) const {
  const float raw = proj_[size_t(row * c_.in_proj_dim() + c_.intermediate() + c_.conv_dim() + head)];
  const float dt = softplus(raw + w.dt_bias.data[head]);
  return std::clamp(dt, float(c_.dt_min), float(c_.dt_max));
}

void Mamba2Mixer::forward(const Mamba2Weights& w, const float* x, int64_t n, std::span<const Mamba2Sequence> seqs,
                          float* out) {
  const int64_t inner = c_.intermediate(), in_dim = c_.in_proj_dim();
  CTX_CHECK(w.in_proj.rows == in_dim && w.out_proj.cols == inner, "Mamba-2 weights do not match the config");
  proj_.resize(size_t(n * in_dim));
  xbc_.resize(size_t(n * c_.conv_dim()));
  y_.resize(size_t(n * inner));
  linear(w.in_proj, x, n, proj_.data(), w.in_bias);
  for (const Mamba2Sequence& s : seqs) {
    if (s.rows == 0) continue;
    CTX_CHECK(s.row_begin >= 0 && s.row_begin + s.rows <= n && s.conv_state && s.ssm_state);
    convolve(w, s);
    if (scan_ == Mamba2Scan::kSequential || s.rows == 1)
      scan_sequential(w, s);
    else
      scan_chunked(w, s);
  }
  // Gated RMSNorm: normalise y * silu(z) over the whole intermediate width.
#pragma omp parallel for schedule(static) if (n * inner > 65536)
  for (int64_t r = 0; r < n; ++r) {
    float* y = y_.data() + r * inner;
    const float* z = proj_.data() + r * in_dim;
    float ss = 0;
    for (int64_t i = 0; i < inner; ++i) {
      y[i] *= silu(z[i]);
      ss += y[i] * y[i];
    }
    const float inv = 1.0f / std::sqrt(ss / float(inner) + eps_);
    for (int64_t i = 0; i < inner; ++i) y[i] = w.norm.data[i] * (y[i] * inv);
  }
  linear(w.out_proj, y_.data(), n, out, w.out_bias);
}

// Causal depthwise conv1d + SiLU over xBC of s's rows; the K - 1 inputs before the first row come
// from the state, which then receives the last K - 1 inputs.
void Mamba2Mixer::convolve(const Mamba2Weights& w, const Mamba2Sequence& s) {
  const int64_t conv = c_.conv_dim(), k = c_.conv_kernel, hist = k - 1, in_dim = c_.in_proj_dim();
  const int64_t off = c_.intermediate(), t_len = s.rows;
  const float* in = proj_.data() + s.row_begin * in_dim + off;  // row t, channel ch: in[t * in_dim + ch]
#pragma omp parallel for schedule(static) if (conv * t_len * k > 65536)
  for (int64_t ch = 0; ch < conv; ++ch) {
    const float* kw = w.conv_weight.data + ch * k;
    float* state = s.conv_state + ch * hist;
    // Input at relative position p (p < 0: from the state).
    auto input = [&](int64_t p) { return p >= 0 ? in[p * in_dim + ch] : state[hist + p]; };
    for (int64_t t = 0; t < t_len; ++t) {
      float acc = w.conv_bias.empty() ? 0.0f : w.conv_bias.data[ch];
      for (int64_t j = 0; j < k; ++j) acc += kw[j] * input(t - hist + j);
      xbc_[size_t((s.row_begin + t) * conv + ch)] = silu(acc);
    }
    // New state: inputs at positions t_len - hist .. t_len - 1, oldest first. Reading front to back
    // only reads state entries at or after the one being written.
    for (int64_t j = 0; j < hist; ++j) state[j] = input(t_len - hist + j);
  }
}

void Mamba2Mixer::scan_sequential(const Mamba2Weights& w, const Mamba2Sequence& s) {
  const int64_t heads = c_.num_heads, p_dim = c_.head_dim, n_dim = c_.state_size, inner = c_.intermediate();
  const int64_t conv = c_.conv_dim(), per_group = heads / c_.num_groups;
#pragma omp parallel for schedule(static) if (heads * s.rows * p_dim * n_dim > 65536)
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / per_group;
    const float a = -std::exp(w.a_log.data[h]), d = w.d.data[h];
    float* state = s.ssm_state + h * p_dim * n_dim;
    for (int64_t t = 0; t < s.rows; ++t) {
      const int64_t row = s.row_begin + t;
      const float* xr = xbc_.data() + row * conv + h * p_dim;
      const float* b = xbc_.data() + row * conv + inner + g * n_dim;
      const float* cm = xbc_.data() + row * conv + inner + c_.num_groups * n_dim + g * n_dim;
      const float dt = step_size(w, row, h), decay = std::exp(dt * a);
      float* y = y_.data() + row * inner + h * p_dim;
      for (int64_t p = 0; p < p_dim; ++p) {
        float* sp = state + p * n_dim;
        for (int64_t i = 0; i < n_dim; ++i) sp[i] = sp[i] * decay + (dt * b[i]) * xr[p];
        y[p] = dot(sp, cm, n_dim) + d * xr[p];
      }
    }
  }
}

// SSD: per chunk, y_t = sum_{s<=t} exp(sum_{s<j<=t} a_j) (C_t . B_s) dt_s x_s + exp(sum_{j<=t} a_j) S0 C_t,
// then S1 = exp(sum_j a_j) S0 + sum_s exp(sum_{j>s} a_j) dt_s x_s B_s^T, with a_j = dt_j A. Decay sums
// are accumulated directly over their ranges (as HF's segment_sum) rather than as differences of
// cumulative sums, which lose precision over long chunks.
void Mamba2Mixer::scan_chunked(const Mamba2Weights& w, const Mamba2Sequence& s) {
  const int64_t heads = c_.num_heads, p_dim = c_.head_dim, n_dim = c_.state_size, inner = c_.intermediate();
  const int64_t conv = c_.conv_dim(), per_group = heads / c_.num_groups, q = c_.chunk_size;
#pragma omp parallel for schedule(static) if (heads * s.rows * p_dim * n_dim > 65536)
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / per_group;
    const float a = -std::exp(w.a_log.data[h]), d = w.d.data[h];
    float* state = s.ssm_state + h * p_dim * n_dim;
    std::vector<float> dt(size_t(std::min(q, s.rows))), la(dt.size()), next(size_t(p_dim * n_dim));
    for (int64_t c0 = 0; c0 < s.rows; c0 += q) {
      const int64_t len = std::min(q, s.rows - c0);
      auto xr = [&](int64_t t) { return xbc_.data() + (s.row_begin + c0 + t) * conv + h * p_dim; };
      auto bm = [&](int64_t t) { return xbc_.data() + (s.row_begin + c0 + t) * conv + inner + g * n_dim; };
      auto cm = [&](int64_t t) {
        return xbc_.data() + (s.row_begin + c0 + t) * conv + inner + c_.num_groups * n_dim + g * n_dim;
      };
      for (int64_t t = 0; t < len; ++t) dt[size_t(t)] = step_size(w, s.row_begin + c0 + t, h), la[size_t(t)] = dt[size_t(t)] * a;
      float into = 0;  // sum_{j<=t} a_j
      for (int64_t t = 0; t < len; ++t) {
        into += la[size_t(t)];
        float* y = y_.data() + (s.row_begin + c0 + t) * inner + h * p_dim;
        const float in_decay = std::exp(into);
        for (int64_t p = 0; p < p_dim; ++p) y[p] = in_decay * dot(state + p * n_dim, cm(t), n_dim);
        float seg = 0;  // sum_{s<j<=t} a_j
        for (int64_t u = t; u >= 0; --u) {
          if (u < t) seg += la[size_t(u + 1)];
          const float coef = std::exp(seg) * dot(cm(t), bm(u), n_dim) * dt[size_t(u)];
          const float* xu = xr(u);
          for (int64_t p = 0; p < p_dim; ++p) y[p] += coef * xu[p];
        }
        const float* xt = xr(t);
        for (int64_t p = 0; p < p_dim; ++p) y[p] += d * xt[p];
      }
      // State at the chunk's end.
      const float whole = std::exp(into);
      for (size_t i = 0; i < next.size(); ++i) next[i] = whole * state[i];
      float seg = 0;  // sum_{u<j<len} a_j
      for (int64_t u = len - 1; u >= 0; --u) {
        if (u < len - 1) seg += la[size_t(u + 1)];
        const float coef = std::exp(seg) * dt[size_t(u)];
        const float *xu = xr(u), *bu = bm(u);
        for (int64_t p = 0; p < p_dim; ++p) {
          const float cx = coef * xu[p];
          for (int64_t i = 0; i < n_dim; ++i) next[size_t(p * n_dim + i)] += cx * bu[i];
        }
      }
      std::copy(next.begin(), next.end(), state);
    }
  }
}

}  // namespace ctx
