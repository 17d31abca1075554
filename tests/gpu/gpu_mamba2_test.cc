// The GPU Mamba-2 mixer (core/cuda/gpu_mamba2.h) against the CPU mixer (core/model/mamba2_layer.h,
// float32, chunked scan with the same chunk size) on random weights: prompt lengths 1, shorter
// than a chunk, not a multiple of it and many chunks long, chunk sizes from 1 to 256, one and
// several B/C groups, with and without a time_step_limit clamp; a prefill, then decode steps, then
// another prefill continuing the state. Label "gpu".
// in_proj and out_proj run on the host (the engine's GEMM and GEMV are tested by gpu_engine_test);
// the conv and norm weights are rounded to bf16 for both sides, as the GPU stores them.
// Tolerance: the GPU rounds the gated norm's output to bf16 twice (HF's order: the normalised value,
// then its product with the weight), relative error <= 2^-8 per element, so the mixer output (after
// out_proj) must be within 1e-2 relative L2 of the CPU's (measured values are printed). States are
// float32 on both sides and only the summation order differs: the SSM state within 1e-4 of its
// largest value, the conv state (copies of inputs) within 1e-6.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cpu/linear.h"
#include "core/cuda/gpu_mamba2.h"
#include "core/model/mamba2_layer.h"

namespace ctx::cuda {
namespace {

float round_bf16(float x) { return bf16_to_f32(f32_to_bf16(x)); }

bool have_gpu() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return count > 0;
}

double relative_l2(const std::vector<float>& a, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float v : a) m = std::max(m, double(std::fabs(v)));
  return m;
}

// Random weights of the shape HF initialises: A = -[1, 16], dt = softplus(dt_bias) in [1e-3, 0.1].
struct RandomMamba2 {
  Mamba2Config c;
  int64_t hidden = 0;
  std::vector<float> in_proj, out_proj, conv_w, conv_b, dt_bias, a_log, d, norm;

  RandomMamba2(const Mamba2Config& config, int64_t hidden_size, uint32_t seed) : c(config), hidden(hidden_size) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::uniform_real_distribution<float> uniform(0.f, 1.f);
    auto fill = [&](std::vector<float>& v, int64_t n, float scale, bool bf16) {
      v.resize(size_t(n));
      for (float& x : v) x = bf16 ? round_bf16(scale * normal(rng)) : scale * normal(rng);
    };
    fill(in_proj, c.in_proj_dim() * hidden, 1.f / std::sqrt(float(hidden)), false);
    fill(out_proj, hidden * c.intermediate(), 1.f / std::sqrt(float(c.intermediate())), false);
    fill(conv_w, c.conv_dim() * c.conv_kernel, 0.5f, true);
    fill(conv_b, c.conv_dim(), 0.1f, true);
    norm.resize(size_t(c.intermediate()));
    for (float& x : norm) x = round_bf16(1.f + 0.1f * normal(rng));
    for (int64_t h = 0; h < c.num_heads; ++h) {
      a_log.push_back(std::log(1.f + 15.f * uniform(rng)));
      const float dt = std::exp(std::log(1e-3f) + uniform(rng) * (std::log(0.1f) - std::log(1e-3f)));
      dt_bias.push_back(std::log(std::expm1(dt)));
      d.push_back(1.f + 0.1f * normal(rng));
    }
  }

  Mamba2Weights view() const {
    Mamba2Weights w;
    w.in_proj = {in_proj.data(), c.in_proj_dim(), hidden, nullptr};
    w.out_proj = {out_proj.data(), hidden, c.intermediate(), nullptr};
    w.conv_weight = {conv_w.data(), int64_t(conv_w.size())};
    if (c.conv_bias) w.conv_bias = {conv_b.data(), int64_t(conv_b.size())};
    w.dt_bias = {dt_bias.data(), c.num_heads};
    w.a_log = {a_log.data(), c.num_heads};
    w.d = {d.data(), c.num_heads};
    w.norm = {norm.data(), c.intermediate()};
    return w;
  }
};

struct Shape {
  const char* name;
  int64_t hidden, heads, head_dim, state, groups;
  double dt_min, dt_max;
};

class GpuMamba2 : public ::testing::TestWithParam<Shape> {};

TEST_P(GpuMamba2, MatchesTheCpuMixerOverChunkSizesAndPieces) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const Shape s = GetParam();
  const float eps = 1e-5f;
  // Pieces fed in order through one state: prefill, decode steps, a prefill continuing the state.
  const std::vector<std::vector<int64_t>> runs = {
      {1, 1, 1},          // decode only (conv state shorter than the kernel at first)
      {5, 1, 1},          // a prefill shorter than the conv kernel's reach and the chunk
      {100, 1, 1, 1, 37}, // not a multiple of the chunk, then decode, then a second prefill
      {300, 1, 2},        // several chunks (and several conv token tiles), then decode
  };
  int cases = 0;
  for (int64_t chunk : {1, 7, 16, 64, 256}) {
    Mamba2Config c;
    c.num_heads = s.heads, c.head_dim = s.head_dim, c.state_size = s.state, c.num_groups = s.groups;
    c.conv_kernel = 4, c.chunk_size = chunk, c.conv_bias = true;
    c.dt_min = s.dt_min, c.dt_max = s.dt_max;
    const RandomMamba2 rw(c, s.hidden, uint32_t(chunk * 31 + s.heads));
    const Mamba2Weights w = rw.view();
    for (const auto& pieces : runs) {
      const int64_t total = [&] { int64_t t = 0; for (int64_t p : pieces) t += p; return t; }();
      std::mt19937 rng(static_cast<uint32_t>(total));
      std::normal_distribution<float> normal(0.f, 1.f);
      std::vector<float> x(size_t(total * s.hidden));
      for (float& v : x) v = normal(rng);

      Mamba2Mixer cpu(c, eps, Mamba2Scan::kChunked);
      std::vector<float> conv_state(size_t(c.conv_dim() * (c.conv_kernel - 1))), ssm_state(size_t(c.num_heads * c.head_dim * c.state_size));
      GpuMamba2Mixer gpu(c, eps, w, *std::max_element(pieces.begin(), pieces.end()));
      int64_t row = 0;
      for (int64_t n : pieces) {
        const float* xr = x.data() + row * s.hidden;
        std::vector<float> expected(size_t(n * s.hidden));
        Mamba2Sequence seq{0, n, conv_state.data(), ssm_state.data()};
        cpu.forward(w, xr, n, {&seq, 1}, expected.data());
        std::vector<float> proj(size_t(n * c.in_proj_dim()));
        linear(w.in_proj, xr, n, proj.data());
        const std::vector<float> mixed = gpu.mix(proj);
        std::vector<float> got(size_t(n * s.hidden));
        linear(w.out_proj, mixed.data(), n, got.data());
        const double err = relative_l2(got, expected);
        const double ssm_err = max_abs_diff(gpu.ssm_state(), ssm_state), ssm_top = max_abs(ssm_state);
        const double conv_err = max_abs_diff(gpu.conv_state(), conv_state);
        if (n > 1 || row == 0)
          std::printf("%s chunk %lld rows %lld..%lld: output rel %.3g, ssm state max|diff| %.3g of %.3g, conv %.3g\n", s.name,
                      (long long)chunk, (long long)row, (long long)(row + n), err, ssm_err, ssm_top, conv_err);
        EXPECT_LE(err, 1e-2) << s.name << " chunk " << chunk << " rows " << row << ".." << row + n;
        EXPECT_LE(ssm_err, 1e-4 * ssm_top + 1e-6) << s.name << " chunk " << chunk << " rows " << row << ".." << row + n;
        EXPECT_LE(conv_err, 1e-6 * max_abs(conv_state) + 1e-7) << s.name << " chunk " << chunk;
        row += n;
        ++cases;
      }
    }
  }
  EXPECT_GT(cases, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuMamba2,
    ::testing::Values(Shape{"fixture_shape", 64, 4, 32, 16, 1, 0.0, INFINITY},       // granite_hybrid's mixer
                      Shape{"granite_1b_head", 96, 6, 64, 128, 2, 0.0, INFINITY},  // 1B's head_dim/state, 2 groups
                      Shape{"dt_clamped", 64, 4, 16, 32, 4, 0.005, 0.05}),        // time_step_limit, a group per head
    [](const ::testing::TestParamInfo<Shape>& i) { return std::string(i.param.name); });

TEST(GpuMamba2Errors, BadShapesAndInputsAreClearErrors) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  Mamba2Config c;
  c.num_heads = 2, c.head_dim = 256, c.state_size = 16, c.num_groups = 1, c.conv_kernel = 4, c.chunk_size = 8;
  const RandomMamba2 rw(c, 32, 1);
  try {
    GpuMamba2Mixer gpu(c, 1e-5f, rw.view(), 4);
    FAIL() << "head_dim 256 should be unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 256"), std::string::npos) << e.what();
  }
  c.head_dim = 16;
  const RandomMamba2 ok(c, 32, 2);
  GpuMamba2Mixer gpu(c, 1e-5f, ok.view(), 4);
  EXPECT_THROW(gpu.mix(std::vector<float>(size_t(5 * c.in_proj_dim()))), Error);  // more rows than max_tokens
  EXPECT_THROW(gpu.mix(std::vector<float>(size_t(c.in_proj_dim() + 1))), Error);  // not whole rows
  Mamba2Weights missing = ok.view();
  missing.a_log = {};
  EXPECT_THROW(GpuMamba2Mixer(c, 1e-5f, missing, 4), Error);
}

}  // namespace
}  // namespace ctx::cuda
