// Quantized weights on the GPU (core/cuda/gpu_quant_gemv.h, the engine's kernels) against the CPU
// quant plugins: the same packed bytes must give the CPU plugin's dequantized matrix. Label "gpu";
// without a GPU every test skips.
//
// Tolerances (every measured error is printed):
// * Decode GEMV: the reference is the float64 product of the plugin's dequantize() with the input
//   rounded to bf16 as the kernel receives it. The kernel's tensor-core products are exact (integer
//   codes in bf16); it sums each group of 32 in float32 in the tensor cores (which may truncate, not
//   round: a few 2^-23 per step of 16), scales the group once, and adds the groups of its warp, then
//   the 8 warps' partial sums: at most about (8 + cols / 512 + 8) * 2^-23 * sum_c |w_c x_c| (< 4e-6
//   for these shapes). nf4/fp4 multiply each code value as bf16 hi + lo, off by at most 2^-18 (3.8e-6)
//   of the value; with codes=bfloat16 the code values are bf16 and their products exact, as q4_0's.
//   Asserted: 1e-5 * sum_c |w_c x_c| (+ 1e-30).
// * Fused RMSNorm: the kernel's rsqrtf and float sum of squares differ from the float64 reference by
//   a few float ulps, which can move an element across a bf16 rounding boundary (twice rounded: up to 2
//   bf16 ulps, 2^-7 relative); such flips are rare (~1e-4 per element), so on top of the GEMV bound
//   4 + cols / 1024 flipped elements are allowed: + (4 + cols / 1024) * 2^-7 * max_c |w_c x_c|.
// * SwiGLU: gate and up are rounded to bf16 before the activation, the activation and the product
//   again; a float-ulp difference in a projection may flip one of these roundings, so each output is
//   asserted within 4 bf16 ulps (2^-6 relative) of the float64 reference, or 2^-6 * 1e-3 of the largest
//   output near zero crossings.
// * Prefill dequantization: exactly bf16(the plugin's value) (value * scale computed in float32 as the
//   CPU does; a double-quantized block scale with one fma on both sides).
// * Prefill GEMM (cuBLAS on the dequantized bf16 tiles, float32 accumulation, maybe split-K): 1e-4 *
//   sum_c |w_c x_c|.
// * End to end, the llama fixture with each quantizer on the GPU against the float32 CPU engine with
//   the same quantizer: the GPU adds bf16 activations (the unquantized engine lands at 3e-3 to 1e-2 of
//   transformers, gpu_engine_test), and the CPU's q8_0/q4_0 kernels quantize the activations to 8 bits
//   (about 4e-3 relative per block) where the GPU keeps them in bf16; asserted ||gpu - cpu|| / ||cpu||
//   <= 3e-2 over all prompt logits. Greedy tokens: where the GPU's first differs from the CPU's, the
//   CPU's logits there must show a near tie: the two within 2% of the largest logit, 5% for q8_0 and
//   q4_0, whose CPU kernels' 8-bit activations put the two engines twice as far apart (H100: 1.5-1.9%
//   relative L2 against 0.7-0.9% for the formats with float activations; one q4_0 flip at 2.2%).
// * llm_int8 (LLM.int8(): the input decomposed per call on the device as the plugin does), against the
//   plugin's own matmul() of the kernel's bf16 input (tests/support/llm_int8_reference.h restates its
//   decomposition). Decode stages int8 codes (exact) and outliers as bf16(x / sx) (within 2^-8) and
//   scales the sums: 2^-8 * sum over outlier columns of (|x| + sx) |w| on top of the GEMV's 1e-5 *
//   sum (|x| + sx) |w|; with the fused RMSNorm each flipped bf16 element may also move its code by one
//   step or its outlier value by 2^-7: + flips * max |w| * (sx + 2^-7 max |x|). Prefill stages bf16(code
//   * sx) and the outliers' x: the GEMM must match the float64 product of the bf16 dequantized matrix
//   with bf16(the plugin's values) within the GEMM bound 1e-4 * sum |w x| (the staging exact), and the
//   plugin's matmul() within 2^-8 * sum over non-outlier columns (|x| + sx) |w| (staging) + 2^-8 *
//   sum |w x| (bf16 weights) + the GEMM bound. SwiGLU: the bf16 bound above plus the gate and up
//   errors e_g, e_u through the activation: 1.1 |u| e_g + |silu(g)| e_u + e_g e_u. End to end (also
//   with threshold 1, where the fixture's small activations have outliers), both engines quantize
//   the activations, but the GPU's bf16 inputs can land one int8 step away from the CPU's float32
//   ones; greedy near ties are allowed at 5% as for q8_0/q4_0 (no device measurement yet). Decode vs
//   the prefill path: the decomposition is per call, so a prompt's outlier columns are any of its
//   tokens' and one token's only its own: the two paths quantize different entries (with threshold 1
//   most columns are a prompt's outliers, a third of a token's); bounded at 3e-2 as GPU vs CPU. The
//   CPU engine itself, same fixture and prompts (24 tokens): decode vs prefill 1.2e-2 at threshold 1,
//   1.6e-7 at 6 (the fixture's activations have no outlier there); llm_int8 vs float32 2.5%.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cctype>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_quant_gemv.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "core/quant/quantize_model.h"
#include "plugins/register_all.h"
#include "tests/gpu/gpu_engine_support.h"
#include "tests/support/llm_int8_reference.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda {
namespace {

float bf16_round(float v) { return bf16_to_f32(f32_to_bf16(v)); }

std::vector<float> random_values(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  // A few large weights, as real checkpoints have (they set the absmax of their block or row).
  for (int64_t i = 0; i < n / 97; ++i) v[size_t((i * 7919) % n)] *= 8.f;
  return v;
}

// A [rows, cols] matrix quantized by `spec` with the CPU plugin, holding its float data too.
struct Quantized {
  std::vector<float> data;
  WeightMatrix m;
  std::vector<float> dequantized;  // the plugin's dequantize()
};

Quantized quantize(const std::string& spec, int64_t rows, int64_t cols, uint32_t seed) {
  Quantized q;
  q.data = random_values(rows * cols, seed, 0.05f);
  WeightMatrix f{q.data.data(), rows, cols, nullptr};
  const auto quantizer = builtin_catalog().quant.create(spec);
  q.m = WeightMatrix{nullptr, rows, cols, quantizer->quantize(f)};
  EXPECT_NE(q.m.quant, nullptr) << spec;
  q.dequantized.resize(size_t(rows * cols));
  q.m.quant->dequantize(q.dequantized.data());
  return q;
}

// The stack's dequantized rows, concatenated.
std::vector<float> stacked_values(const std::vector<const Quantized*>& parts) {
  std::vector<float> v;
  for (const Quantized* p : parts) v.insert(v.end(), p->dequantized.begin(), p->dequantized.end());
  return v;
}

// x as the kernel sees it: bf16, or the engine's RMSNorm in bf16 (launch_rmsnorm's rounding); with
// sumsq >= 0 that sum of squares standing for x's (GemvInput::sumsq).
std::vector<float> kernel_input(const std::vector<float>& x, const std::vector<float>& norm_weight, float eps,
                                double sumsq = -1) {
  std::vector<float> in(x.size());
  if (norm_weight.empty()) {
    for (size_t i = 0; i < x.size(); ++i) in[i] = bf16_round(x[i]);
    return in;
  }
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  if (sumsq >= 0) ss = sumsq;
  const float inv = float(1.0 / std::sqrt(ss / double(x.size()) + eps));
  for (size_t i = 0; i < x.size(); ++i) in[i] = bf16_round(bf16_round(norm_weight[i]) * bf16_round(x[i] * inv));
  return in;
}

struct RowDot {
  double value = 0, abs_sum = 0, abs_max = 0;
};
RowDot row_dot(const std::vector<float>& w, int64_t r, int64_t cols, const std::vector<float>& x) {
  RowDot d;
  for (int64_t c = 0; c < cols; ++c) {
    const double p = double(w[size_t(r * cols + c)]) * x[size_t(c)];
    d.value += p, d.abs_sum += std::fabs(p), d.abs_max = std::max(d.abs_max, std::fabs(p));
  }
  return d;
}

// A plain GEMV's outputs y [rows] against the float64 reference y0 + alpha (W in + bf16(bias)), W the
// plugin's dequantized [rows, cols]: within the GEMV bound (the header) plus `flips` inputs moved by a
// bf16 flip (the fused RMSNorm). Sets *worst to the largest error as a fraction of its tolerance.
// Call under ASSERT_NO_FATAL_FAILURE.
void check_gemv(const std::vector<float>& y, const std::vector<float>& w, int64_t cols, const std::vector<float>& in,
                const std::vector<float>& y0, const std::vector<float>& bias, double alpha, double flips,
                const std::string& what, double* worst = nullptr) {
  const int64_t rows = int64_t(y0.size());
  ASSERT_EQ(int64_t(y.size()), rows) << what;
  double most = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const RowDot d = row_dot(w, r, cols, in);
    const double ref = y0[size_t(r)] + alpha * (d.value + bf16_round(bias[size_t(r)]));
    const double tol = 1e-5 * alpha * d.abs_sum + flips * alpha * std::ldexp(d.abs_max, -7) + 1e-30;
    const double err = std::fabs(y[size_t(r)] - ref);
    most = std::max(most, err / tol);
    ASSERT_LE(err, tol) << what << " row " << r;
  }
  if (worst) *worst = most;
}

// A SwiGLU GEMV's outputs act [ff] over the stacked [gate; up] values w [2 ff, cols] (bias [2 ff] or
// empty) against the float64 reference with HF's roundings: within 4 bf16 ulps (the header). Call
// under ASSERT_NO_FATAL_FAILURE.
void check_swiglu(const std::vector<float>& act, const std::vector<float>& w, int64_t ff, int64_t cols,
                  const std::vector<float>& in, const std::vector<float>& bias, const std::string& what) {
  ASSERT_EQ(int64_t(act.size()), ff) << what;
  const auto b = [&](int64_t r) { return bias.empty() ? 0.0 : double(bf16_round(bias[size_t(r)])); };
  std::vector<double> ref(static_cast<size_t>(ff));
  double largest = 0;
  for (int64_t r = 0; r < ff; ++r) {
    const double g = bf16_round(float(row_dot(w, r, cols, in).value + b(r)));
    const double u = bf16_round(float(row_dot(w, ff + r, cols, in).value + b(ff + r)));
    ref[size_t(r)] = bf16_round(float(g / (1 + std::exp(-g)))) * u;
    largest = std::max(largest, std::fabs(ref[size_t(r)]));
  }
  for (int64_t r = 0; r < ff; ++r)
    ASSERT_LE(std::fabs(act[size_t(r)] - ref[size_t(r)]), std::ldexp(std::max(std::fabs(ref[size_t(r)]), 1e-3 * largest), -6))
        << what << " act " << r;
}

bool have_gpu() {
  try {
    const std::vector<float> w(32, 1.f), x(32, 1.f);
    WeightMatrix m{w.data(), 1, 32, nullptr};
    GpuGemvCase c;
    c.x = x;
    gpu_gemv({&m}, c);
    return true;
  } catch (const Unsupported&) {
    return false;
  }
}

#define SKIP_WITHOUT_GPU() \
  if (!have_gpu()) GTEST_SKIP() << "no GPU"

struct Shape {
  std::string spec;
  int64_t rows, cols;
};

// A gtest parameter name: the spec with every other character than letters and digits as '_'.
std::string test_name(std::string n) {
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}
std::string spec_name(const ::testing::TestParamInfo<std::string>& info) { return test_name(info.param); }

// One spec of each packed layout the GEMV kernels take (int8, q8_0, q4_0, nf4/fp4 with float code
// values and scales per chunk or per group, with bf16 code values): the format suites below run each.
const std::vector<std::string> kPackedFormats = {"int8", "q8_0", "q4_0", "nf4", "nf4:double_quant=true,blocksize=64",
                                                 "fp4", "nf4:codes=bfloat16", "fp4:codes=bfloat16,double_quant=true"};

class GpuQuantGemv : public ::testing::TestWithParam<Shape> {};

// Plain (bias, alpha, accumulate onto y0) and fused-RMSNorm GEMVs, and prefill's dequantization and
// GEMM, on one matrix.
TEST_P(GpuQuantGemv, MatchesThePluginsDequantizedMatrix) {
  SKIP_WITHOUT_GPU();
  const Shape& s = GetParam();
  const Quantized q = quantize(s.spec, s.rows, s.cols, 1234);
  const std::vector<float> x = random_values(s.cols, 7, 1.f), bias = random_values(s.rows, 8, 0.1f),
                           y0 = random_values(s.rows, 9, 1.f), norm = random_values(s.cols, 10, 1.f);
  for (bool fused_norm : {false, true}) {
    const std::vector<float> nw = fused_norm ? norm : std::vector<float>();
    GpuGemvCase c;
    c.x = x, c.norm_weight = nw, c.eps = 1e-5f, c.bias = bias, c.alpha = 0.5f, c.y0 = y0;
    const std::vector<float> y = gpu_gemv({&q.m}, c);
    const std::vector<float> in = kernel_input(x, nw, c.eps);
    double worst = 0;
    ASSERT_NO_FATAL_FAILURE(check_gemv(y, q.dequantized, s.cols, in, y0, bias, 0.5, fused_norm ? double(4 + s.cols / 1024) : 0.0,
                                       s.spec + (fused_norm ? " (fused norm)" : ""), &worst));
    std::printf("%s [%lld, %lld]%s: worst GEMV error %.3g of the tolerance\n", s.spec.c_str(), (long long)s.rows,
                (long long)s.cols, fused_norm ? " fused norm" : "", worst);
  }
  // Prefill: the dequantized bf16 rows (two ranges: r0 > 0 too), then the tiled GEMM.
  const int64_t half = s.rows / 2;
  for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, std::max<int64_t>(half, 1)}, {std::max<int64_t>(half, 1), s.rows}}) {
    if (r0 >= r1) continue;
    const std::vector<float> d = gpu_dequantize({&q.m}, r0, r1);
    for (int64_t i = 0; i < (r1 - r0) * s.cols; ++i)
      ASSERT_EQ(d[size_t(i)], bf16_round(q.dequantized[size_t(r0 * s.cols + i)])) << s.spec << " element " << r0 * s.cols + i;
  }
  const int64_t n = 5;
  const std::vector<float> xs = random_values(n * s.cols, 11, 1.f);
  const std::vector<float> out = gpu_gemm({&q.m}, xs, n, 3 * s.cols + 5);  // tiles of 3 rows
  std::vector<float> wb(q.dequantized);
  for (float& v : wb) v = bf16_round(v);
  for (int64_t j = 0; j < n; ++j) {
    std::vector<float> xj(xs.begin() + j * s.cols, xs.begin() + (j + 1) * s.cols);
    for (float& v : xj) v = bf16_round(v);
    for (int64_t r = 0; r < s.rows; ++r) {
      const RowDot d = row_dot(wb, r, s.cols, xj);
      ASSERT_LE(std::fabs(out[size_t(j * s.rows + r)] - d.value), 1e-4 * d.abs_sum + 1e-30)
          << s.spec << " GEMM row " << j << ", output " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, GpuQuantGemv,
    ::testing::Values(
        // int8 takes any shape: cols not a multiple of 32 (rows padded on the device) nor of 8 (the
        // scalar staging path); rows not a multiple of the 8 warps of a block; an input over 48 KiB of
        // shared memory.
        Shape{"int8", 48, 4096}, Shape{"int8", 37, 1000}, Shape{"int8", 19, 97}, Shape{"int8", 3, 30000},
        Shape{"q8_0", 45, 4096}, Shape{"q8_0", 33, 96}, Shape{"q8_0", 9, 11008},
        Shape{"q4_0", 45, 4096}, Shape{"q4_0", 33, 96}, Shape{"q4_0", 9, 11008},
        // nf4/fp4: blocks crossing rows (cols % blocksize != 0), other blocksizes, double quantization
        // with more than 256 blocks (several nested scales).
        Shape{"nf4", 45, 4096}, Shape{"nf4", 37, 96}, Shape{"nf4:blocksize=32", 10, 160},
        Shape{"nf4:blocksize=256", 13, 4128}, Shape{"nf4:double_quant=true", 300, 512},
        Shape{"nf4:double_quant=true,blocksize=128", 21, 480}, Shape{"fp4", 45, 4096}, Shape{"fp4", 37, 96},
        Shape{"fp4:double_quant=true", 77, 1024},
        // codes=bfloat16: one k slot per weight through the byte-pair table (Code4PairFormat).
        Shape{"nf4:codes=bfloat16", 45, 4096}, Shape{"nf4:codes=bfloat16", 37, 96},
        Shape{"nf4:codes=bfloat16,blocksize=32", 10, 160}, Shape{"nf4:codes=bfloat16", 9, 11008},
        Shape{"nf4:codes=bfloat16,double_quant=true", 300, 512}, Shape{"fp4:codes=bfloat16", 45, 4096}),
    [](const ::testing::TestParamInfo<Shape>& info) {
      return test_name(info.param.spec + "_" + std::to_string(info.param.rows) + "x" + std::to_string(info.param.cols));
    });

// Row-stacked parts (the engine's wqkv and gate_up): the SwiGLU variant over [gate; up], and a plain
// GEMV over three parts whose nf4 blocks are numbered per part (cols % blocksize != 0) with their own
// double-quantization offsets.
class GpuQuantStacked : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuQuantStacked, SwigluAndStackedPartsMatchTheReference) {
  SKIP_WITHOUT_GPU();
  const std::string spec = GetParam();
  const int64_t ff = 45, cols = spec.rfind("int8", 0) == 0 ? 200 : 224;
  const Quantized gate = quantize(spec, ff, cols, 21), up = quantize(spec, ff, cols, 22);
  const std::vector<float> x = random_values(cols, 23, 1.f), norm = random_values(cols, 24, 1.f),
                           bias = random_values(2 * ff, 25, 0.1f);
  const std::vector<float> w = stacked_values({&gate, &up});
  for (bool fused_norm : {false, true}) {
    const std::vector<float> nw = fused_norm ? norm : std::vector<float>();
    GpuGemvCase c;
    c.x = x, c.norm_weight = nw, c.bias = bias, c.swiglu = true;
    const std::vector<float> act = gpu_gemv({&gate.m, &up.m}, c);
    const std::vector<float> in = kernel_input(x, nw, c.eps);
    ASSERT_NO_FATAL_FAILURE(check_swiglu(act, w, ff, cols, in, bias, spec + (fused_norm ? " (fused norm)" : "")));
  }
  // Three parts of different heights, like [wq; wk; wv].
  const Quantized q = quantize(spec, 40, cols, 31), k = quantize(spec, 12, cols, 32), v = quantize(spec, 12, cols, 33);
  const std::vector<float> wqkv = stacked_values({&q, &k, &v});
  GpuGemvCase c;
  c.x = x;
  const std::vector<float> y = gpu_gemv({&q.m, &k.m, &v.m}, c);
  const std::vector<float> in = kernel_input(x, {}, 0.f);
  ASSERT_EQ(y.size(), size_t(64));
  for (int64_t r = 0; r < 64; ++r) {
    const RowDot d = row_dot(wqkv, r, cols, in);
    ASSERT_LE(std::fabs(y[size_t(r)] - d.value), 1e-5 * d.abs_sum + 1e-30) << spec << " stacked row " << r;
  }
  const std::vector<float> dq = gpu_dequantize({&q.m, &k.m, &v.m}, 0, 64);
  for (size_t i = 0; i < wqkv.size(); ++i) ASSERT_EQ(dq[i], bf16_round(wqkv[i])) << spec << " stacked element " << i;
}

INSTANTIATE_TEST_SUITE_P(Formats, GpuQuantStacked,
                         ::testing::ValuesIn(kPackedFormats), spec_name);

// The batched GEMV (n input rows in one pass over the packed weights; the tensor cores' 8 columns,
// which all hold the one input of the GEMV above, each take a row): row o of the result is, bit for
// bit, the staged single-row GEMV of x[o] (the same products, summed in the same order with the default 16
// warps), plain (bias, alpha, accumulating onto y0) and SwiGLU, for n = 1 (the engine's GEMV of an
// input given as is, linear_weights.h), 2, 5 and 8, over 1024 columns (the single-row kernel holds
// its input in registers) and 4160 (65 chunks: from shared memory; 8-bit n = 1 reads it in place).
// The rows it
// refuses (the engine then runs its dequantize + GEMM path): llm_int8, cols not a multiple of 64, n > 8.
class GpuQuantRows : public ::testing::TestWithParam<std::string> {};

std::vector<uint32_t> float_bits(const std::vector<float>& v) {
  std::vector<uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

TEST_P(GpuQuantRows, EachRowIsTheSingleRowGemvBitForBit) {
  SKIP_WITHOUT_GPU();
  const std::string spec = GetParam();
  const int64_t rows = 45, ff = 45, gu_cols = 256;
  const Quantized gate = quantize(spec, ff, gu_cols, 52), up = quantize(spec, ff, gu_cols, 53);
  const std::vector<float> bias = random_values(rows, 54, 0.1f), gu_bias = random_values(2 * ff, 55, 0.1f);
  for (int64_t cols : {1024, 4160})
  for (int64_t n : {1, 2, 5, 8}) {
    const Quantized q = quantize(spec, rows, cols, 51);
    const std::vector<float> xs = random_values(n * cols, 56 + uint32_t(n), 1.f), y0 = random_values(n * rows, 66 + uint32_t(n), 1.f);
    GpuGemvCase c;
    c.x = xs, c.bias = bias, c.alpha = 0.5f, c.y0 = y0, c.n = n;
    const std::vector<float> y = gpu_gemv({&q.m}, c);
    ASSERT_EQ(int64_t(y.size()), n * rows) << spec;
    const std::vector<float> gx = random_values(n * gu_cols, 76 + uint32_t(n), 1.f);
    GpuGemvCase g;
    g.x = gx, g.bias = gu_bias, g.swiglu = true, g.n = n;
    const std::vector<float> act = gpu_gemv({&gate.m, &up.m}, g);
    ASSERT_EQ(int64_t(act.size()), n * ff) << spec;
    for (int64_t o = 0; o < n; ++o) {
      GpuGemvCase one = c;
      one.n = 1, one.stage_input = true, one.x = std::span<const float>(xs).subspan(size_t(o * cols), size_t(cols));
      one.y0 = std::span<const float>(y0).subspan(size_t(o * rows), size_t(rows));
      const std::vector<float> want = gpu_gemv({&q.m}, one);
      EXPECT_EQ(float_bits(std::vector<float>(y.begin() + o * rows, y.begin() + (o + 1) * rows)), float_bits(want))
          << spec << ": row " << o << " of " << n << ", " << cols << " columns";
      GpuGemvCase gone = g;
      gone.n = 1, gone.x = std::span<const float>(gx).subspan(size_t(o * gu_cols), size_t(gu_cols));
      const std::vector<float> gwant = gpu_gemv({&gate.m, &up.m}, gone);
      EXPECT_EQ(float_bits(std::vector<float>(act.begin() + o * ff, act.begin() + (o + 1) * ff)), float_bits(gwant))
          << spec << ": SwiGLU row " << o << " of " << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, GpuQuantRows,
                         ::testing::ValuesIn(kPackedFormats), spec_name);

// The greedy pick after the classifier: per row the index of the largest logit, the lowest on ties,
// against a scan on the CPU. Vocabularies with vocab % 4 == 0 (16-byte loads) and without (one float
// at a time), a row whose maximum appears twice, a row of -inf (index 0) and a row with NaNs (never
// picked).
TEST(GpuArgmax, LargestLogitLowestIndexOnTies) {
  SKIP_WITHOUT_GPU();
  for (int64_t vocab : {32000, 32003, 7, 4100}) {
    const int64_t rows = 5;
    std::vector<float> logits = random_values(rows * vocab, 101 + uint32_t(vocab), 4.f);
    float* tie = logits.data() + vocab;  // row 1: its maximum twice
    tie[vocab / 3] = tie[vocab - 1] = 1e6f;  // above any of random_values' values
    std::fill(logits.begin() + 2 * vocab, logits.begin() + 3 * vocab, -INFINITY);  // row 2
    float* nan = logits.data() + 3 * vocab;  // row 3: NaNs around a maximum
    for (int64_t i = 0; i < vocab; i += 3) nan[i] = NAN;
    nan[vocab - 2] = 1e6f;
    const std::vector<int32_t> got = gpu_argmax_rows(logits, rows);
    ASSERT_EQ(int64_t(got.size()), rows);
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = logits.data() + r * vocab;
      int64_t want = 0;
      while (want < vocab && std::isnan(row[want])) ++want;
      for (int64_t i = want + 1; i < vocab; ++i)
        if (row[i] > row[want]) want = i;
      EXPECT_EQ(got[size_t(r)], int32_t(want)) << "vocab " << vocab << ", row " << r;
    }
    EXPECT_EQ(got[1], int32_t(vocab / 3)) << "vocab " << vocab << ": the tie";
    EXPECT_EQ(got[2], 0) << "vocab " << vocab << ": all -inf";
    EXPECT_EQ(got[3], int32_t(vocab - 2)) << "vocab " << vocab << ": NaNs";
  }
}

// The sums of squares a GEMV into the hidden state leaves (GemvEpilogue::sumsq) and the fused RMSNorm
// that adds them up instead of summing its input (GemvInput::sumsq; GpuEngineOptions::norm_partials):
// - Left: per tile of 16 rows, bit for bit the butterfly of lanes 0 .. 15 (xor 8, 4, 2, 1) over the
//   float32 squares of the y values stored (bias, alpha, accumulating onto y0; 45 rows: the last tile
//   13), from the kernel that holds its input in registers (1024 columns), the staged one (4160: 65
//   chunks) and 8-bit weights' one-row batched kernel (4160, read in place).
// - Used: given 37 partials summing to 4 sum(x^2) (so the input becomes x / rms(2 x)), the plain and
//   SwiGLU GEMVs over 1024 columns normalize without staging (direct_norm) and match the reference of
//   that input within the fused-norm tolerance; over 4160 columns they stage the input and ignore the
//   partials (the reference of x itself).
class GpuQuantNormPartials : public ::testing::TestWithParam<std::string> {};

float tile_butterfly(const std::vector<float>& y, int64_t row0, int64_t rows) {
  float v[16];
  for (int i = 0; i < 16; ++i) {
    const float yi = row0 + i < rows ? y[size_t(row0 + i)] : 0.f;
    v[i] = yi * yi;
  }
  for (int o = 8; o > 0; o /= 2) {
    float next[16];
    for (int i = 0; i < 16; ++i) next[i] = v[i] + v[i ^ o];
    std::copy(next, next + 16, v);
  }
  return v[0];
}

TEST_P(GpuQuantNormPartials, LeftBitForBitAndUsedWhereTheInputIsNotStaged) {
  SKIP_WITHOUT_GPU();
  const std::string spec = GetParam();
  const int64_t rows = 45;
  for (int64_t cols : {1024, 4160}) {
    const Quantized q = quantize(spec, rows, cols, 141);
    const std::vector<float> x = random_values(cols, 142, 1.f), bias = random_values(rows, 143, 0.1f),
                             y0 = random_values(rows, 144, 1.f), norm = random_values(cols, 145, 1.f);
    GpuGemvCase c;
    c.x = x, c.bias = bias, c.alpha = 0.5f, c.y0 = y0, c.want_sumsq = true;
    const GpuGemvResult left = gpu_gemv_result({&q.m}, c);
    ASSERT_EQ(left.sumsq.size(), size_t(3)) << spec << ", " << cols << " columns";
    for (int64_t t = 0; t < 3; ++t)
      EXPECT_EQ(float_bits({left.sumsq[size_t(t)]}), float_bits({tile_butterfly(left.y, 16 * t, rows)}))
          << spec << ", " << cols << " columns: tile " << t;
    EXPECT_EQ(float_bits(left.y), float_bits(gpu_gemv({&q.m}, [&] {
                GpuGemvCase plain = c;
                plain.want_sumsq = false;
                return plain;
              }())))
        << spec << ", " << cols << " columns: y with the sums of squares";

    // 37 partials of 4 sum(x^2).
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    std::vector<float> parts(37, float(4 * ss / 37));
    double given = 0;
    for (float p : parts) given += p;
    const bool direct = cols == 1024;
    const std::vector<float> in = kernel_input(x, norm, 1e-5f, direct ? given : -1);
    const std::string what = spec + ", " + std::to_string(cols) + " columns";
    GpuGemvCase n;
    n.x = x, n.norm_weight = norm, n.eps = 1e-5f, n.bias = bias, n.alpha = 0.5f, n.y0 = y0, n.sumsq = parts;
    const GpuGemvResult got = gpu_gemv_result({&q.m}, n);
    EXPECT_EQ(got.direct_norm, direct) << what;
    ASSERT_NO_FATAL_FAILURE(check_gemv(got.y, q.dequantized, cols, in, y0, bias, 0.5, double(4 + cols / 1024), what));
    // SwiGLU over [gate; up] with the same partials.
    const Quantized gate = quantize(spec, rows, cols, 146), up = quantize(spec, rows, cols, 147);
    GpuGemvCase g;
    g.x = x, g.norm_weight = norm, g.eps = 1e-5f, g.swiglu = true, g.sumsq = parts;
    const GpuGemvResult act = gpu_gemv_result({&gate.m, &up.m}, g);
    EXPECT_EQ(act.direct_norm, direct) << what << ": SwiGLU";
    ASSERT_NO_FATAL_FAILURE(check_swiglu(act.y, stacked_values({&gate, &up}), rows, cols, in, {}, what));
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, GpuQuantNormPartials,
                         ::testing::ValuesIn(kPackedFormats), spec_name);

// A decoder layer's decode GEMVs after attention in one persistent kernel (launch_quant_gemv_chain:
// o_proj + residual, RMSNorm + [gate; up] + SwiGLU, down_proj + residual, the next RMSNorm + [q; k; v],
// each stage reading what the one before wrote) give, bit for bit, the four launches the engine makes
// without it (each checked against the plugins above), with each ring and either barrier. The shapes: 1056 columns (17
// chunks, the last half padding), 4416 SwiGLU rows (276 gate tiles: more than one wave, so some
// blocks take two tiles, and a 69-chunk down_proj, which 8-bit weights read in place without the
// chain), a three-part qkv stack.
class GpuQuantChain : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuQuantChain, EachStageIsItsOwnLaunchBitForBit) {
  SKIP_WITHOUT_GPU();
  const std::string spec = GetParam();
  const int64_t d = 1056, ff = 4416, kv = 272;
  const Quantized o = quantize(spec, d, d, 81), gate = quantize(spec, ff, d, 82), up = quantize(spec, ff, d, 83),
                  down = quantize(spec, d, ff, 84), q = quantize(spec, d, d, 85), k = quantize(spec, kv, d, 86),
                  v = quantize(spec, kv, d, 87);
  const std::vector<float> x = random_values(d, 88, 1.f), hidden = random_values(d, 89, 1.f),
                           ffn_norm = random_values(d, 90, 1.f), attn_norm = random_values(d, 91, 1.f);
  GpuLayerGemvs c;
  c.o = {&o.m}, c.gate_up = {&gate.m, &up.m}, c.down = {&down.m}, c.qkv = {&q.m, &k.m, &v.m};
  c.x = x, c.hidden = hidden, c.ffn_norm = ffn_norm, c.attn_norm = attn_norm, c.alpha = 0.75f;
  const GpuLayerGemvsResult want = gpu_layer_gemvs(c, false);
  ASSERT_EQ(int64_t(want.hidden.size()), d);
  ASSERT_EQ(int64_t(want.act.size()), ff);
  ASSERT_EQ(int64_t(want.qkv.size()), d + 2 * kv);
  double moved = 0;
  for (int64_t i = 0; i < d; ++i) moved = std::max(moved, double(std::fabs(want.hidden[size_t(i)] - hidden[size_t(i)])));
  ASSERT_GT(moved, 0.1) << spec << ": the residual stages changed nothing";
  for (int ring : {48, 96, 144})
  for (int barrier : {1, 2}) {
    const GpuLayerGemvsResult got = gpu_layer_gemvs(c, true, ring, barrier);
    const std::string what = spec + ", ring " + std::to_string(ring) + ", barrier kind " + std::to_string(barrier);
    EXPECT_EQ(float_bits(got.hidden), float_bits(want.hidden)) << what << ": hidden";
    EXPECT_EQ(float_bits(got.act), float_bits(want.act)) << what << ": act";
    EXPECT_EQ(float_bits(got.qkv), float_bits(want.qkv)) << what << ": qkv";
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, GpuQuantChain,
                         ::testing::ValuesIn(kPackedFormats), spec_name);

TEST(GpuQuantChainRefused, Llmint8AndNarrowMatrices) {
  SKIP_WITHOUT_GPU();
  // Square o, down and qkv of d columns, [gate; up] of 2d rows, quantized by `spec`.
  const auto check = [](const std::string& spec, int64_t d, bool chainable) {
    const Quantized o = quantize(spec, d, d, 92), gate_up = quantize(spec, 2 * d, d, 93), down = quantize(spec, d, d, 94),
                    qkv = quantize(spec, d, d, 95);
    const std::vector<float> v = random_values(d, 96, 1.f);
    GpuLayerGemvs c;
    c.o = {&o.m}, c.gate_up = {&gate_up.m}, c.down = {&down.m}, c.qkv = {&qkv.m};
    c.x = v, c.hidden = v, c.ffn_norm = v, c.attn_norm = v;
    EXPECT_NO_THROW(gpu_layer_gemvs(c, false)) << spec << ", " << d << " columns";
    if (chainable) {
      EXPECT_NO_THROW(gpu_layer_gemvs(c, true)) << spec << ", " << d << " columns";
    } else {
      EXPECT_THROW(gpu_layer_gemvs(c, true), Error) << spec << ", " << d << " columns";
    }
  };
  check("llm_int8", 1024, false);
  check("q4_0", 960, false);  // 15 chunks: fewer than the chain's 16 warps
  check("q4_0", 1024, true);
}

// The engine's decode through the chain (GpuEngineOptions::gemv_chain; the llama fixture's 64 columns
// are too narrow for it) on a random 3-layer Llama of width 1024 with GQA: one token at a time and
// greedy graph replays give the same logits and tokens bit for bit as the four launches, on one
// engine switched with set_gemv_chain. Every layer but the last chains 4 stages, the last 3.
class GpuQuantChainEngine : public ::testing::TestWithParam<std::string> {};

// A random 3-layer Llama of width 1024 with GQA, its weights quantized by `spec`.
std::unique_ptr<Model> random_llama_1024(const std::string& spec) {
  const std::string path = ::testing::TempDir() + "gpu_chain_llama.json";
  {
    std::ofstream f(path);
    f << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 1024,
            "intermediate_size": 2816, "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 4,
            "vocab_size": 512, "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "tie_word_embeddings": false, "hidden_act": "silu", "initializer_range": 0.05})";
  }
  auto model = load_model("random:" + path + ":13");
  quantize_model_weights(model->weights, builtin_catalog().quant, spec);
  return model;
}
std::vector<int32_t> random_llama_ids() {
  std::vector<int32_t> ids(24);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 37 + 11) % 512);
  return ids;
}

TEST_P(GpuQuantChainEngine, DecodesBitForBitAsTheFourLaunches) {
  SKIP_WITHOUT_GPU();
  const std::string spec = GetParam();
  const auto model = random_llama_1024(spec);
  GpuEngineOptions opt;
  opt.capacity = 128, opt.prefill_chunk = 32;
  opt.norm_partials = false;  // the chain sums hidden's squares as the four launches do without them
  auto engine = GpuEngine::create(*model, opt);
  const std::vector<int32_t> ids = random_llama_ids();
  gpu_test::DecodeTrace runs[2];
  for (bool chain : {false, true}) {
    engine->set_gemv_chain(chain);
    runs[chain] = gpu_test::decode_trace(*engine, ids, 16, ids.size(), 24);
  }
  ASSERT_EQ(runs[0].logits.size(), size_t(8 * 512));
  EXPECT_EQ(float_bits(runs[1].logits), float_bits(runs[0].logits)) << spec << ": decode logits with the chain";
  EXPECT_EQ(runs[1].tokens, runs[0].tokens) << spec << ": greedy tokens with the chain";
  std::set<int32_t> distinct(runs[0].tokens.begin(), runs[0].tokens.end());
  EXPECT_GT(distinct.size(), size_t(1)) << spec << ": a degenerate model";
}

INSTANTIATE_TEST_SUITE_P(Formats, GpuQuantChainEngine, ::testing::Values("int8", "q4_0", "nf4:codes=bfloat16", "fp4"),
                         spec_name);

// The engine's decode with and without GpuEngineOptions::norm_partials on that model, one engine
// switched with set_norm_partials: the RMSNorm's sum of squares is added in another order, so logits
// may move by float rounding and the bf16 flips it causes, not more (relative L2 <= 1e-3 over the 8
// teacher-forced decode steps; measured in the test's output), and the greedy tokens stay the same.
class GpuQuantNormPartialsEngine : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuQuantNormPartialsEngine, DecodesAsTheStagedNorm) {
  SKIP_WITHOUT_GPU();
  const std::string spec = GetParam();
  const auto model = random_llama_1024(spec);
  const std::vector<int32_t> ids = random_llama_ids();
  GpuEngineOptions opt;
  opt.capacity = 128, opt.prefill_chunk = 32;
  auto engine = GpuEngine::create(*model, opt);
  gpu_test::DecodeTrace runs[2];
  for (bool partials : {false, true}) {
    engine->set_norm_partials(partials);
    runs[partials] = gpu_test::decode_trace(*engine, ids, 16, ids.size(), 24);
  }
  ASSERT_EQ(runs[0].logits.size(), size_t(8 * 512));
  const double err = test::relative_l2(runs[1].logits.data(), runs[0].logits.data(), runs[0].logits.size());
  std::printf("%s: norm_partials moves the decode logits by %.3g (relative L2)\n", spec.c_str(), err);
  EXPECT_LE(err, 1e-3) << spec;
  EXPECT_EQ(runs[1].tokens, runs[0].tokens) << spec << ": greedy tokens with norm_partials";
}

INSTANTIATE_TEST_SUITE_P(Formats, GpuQuantNormPartialsEngine,
                         ::testing::Values("int8", "q8_0", "q4_0", "nf4:codes=bfloat16", "fp4"), spec_name);

TEST(GpuQuantRowsRefused, Llmint8NarrowMatricesAndNineRows) {
  SKIP_WITHOUT_GPU();
  const Quantized llm = quantize("llm_int8", 4, 64, 81), narrow = quantize("int8", 4, 96, 82), int8 = quantize("int8", 4, 64, 83);
  for (auto [m, cols, n] : {std::tuple{&llm.m, int64_t(64), int64_t(2)}, {&narrow.m, int64_t(96), int64_t(2)},
                            {&int8.m, int64_t(64), int64_t(9)}}) {
    const std::vector<float> xs = random_values(n * cols, 84, 1.f);
    GpuGemvCase c;
    c.x = xs, c.n = n;
    try {
      gpu_gemv({m}, c);
      ADD_FAILURE() << "a batched GEMV of " << n << " rows over " << cols << " columns should be refused";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("batched GEMV"), std::string::npos) << e.what();
    }
  }
}

TEST(GpuQuant, FormatsWithoutAGpuKernelAreUnsupported) {
  SKIP_WITHOUT_GPU();
  const Quantized nf4 = quantize("nf4", 4, 48, 41), llm = quantize("llm_int8", 4, 64, 42),
                  llm2 = quantize("llm_int8:threshold=2", 4, 64, 43), int8 = quantize("int8", 4, 64, 44);
  for (auto [parts, cols, expected] :
       {std::tuple<std::vector<const WeightMatrix*>, int64_t, const char*>{{&nf4.m}, 48, "cols divisible by 32"},
        {{&llm.m, &int8.m}, 64, "different formats"}, {{&llm.m, &llm2.m}, 64, "different formats"}}) {
    const std::vector<float> x(size_t(cols), 1.f);
    GpuGemvCase c;
    c.x = x;
    try {
      gpu_gemv(parts, c);
      ADD_FAILURE() << expected << ": ran on the GPU";
    } catch (const Unsupported& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

// LLM.int8(): sum over columns of (|x| + sx) |w| for output r of row j, over every column and over the
// columns `which` selects.
struct LlmInt8Sums {
  double all = 0, selected = 0, max_w = 0;
};
template <class Which>
LlmInt8Sums llm_int8_sums(const std::vector<float>& w, int64_t r, const std::vector<float>& x, int64_t j, int64_t cols,
                          float sx, Which which) {
  LlmInt8Sums s;
  for (int64_t c = 0; c < cols; ++c) {
    const double wa = std::fabs(double(w[size_t(r * cols + c)]));
    const double t = wa * (std::fabs(double(x[size_t(j * cols + c)])) + sx);
    s.all += t, s.max_w = std::max(s.max_w, wa);
    if (which(c)) s.selected += t;
  }
  return s;
}

float llm_int8_threshold(const Quantized& q) { return q.m.quant->packed_layout().outlier_threshold; }

// Inputs with outliers: N(0, 2), every 97th entry times 8.
std::vector<float> llm_int8_input(int64_t n, uint32_t seed) { return random_values(n, seed, 2.f); }

// The plugin's matmul() of x [n, cols] (as the kernel receives it) by each part, stacked: y [n, rows].
std::vector<float> plugin_matmul(const std::vector<const Quantized*>& parts, const std::vector<float>& x, int64_t n) {
  int64_t rows = 0;
  for (const Quantized* p : parts) rows += p->m.rows;
  std::vector<float> y(size_t(n * rows));
  int64_t r0 = 0;
  for (const Quantized* p : parts) {
    std::vector<float> part(size_t(n * p->m.rows));
    p->m.quant->matmul(x.data(), n, part.data());
    for (int64_t j = 0; j < n; ++j)
      for (int64_t r = 0; r < p->m.rows; ++r) y[size_t(j * rows + r0 + r)] = part[size_t(j * p->m.rows + r)];
    r0 += p->m.rows;
  }
  return y;
}

class GpuLlmInt8 : public ::testing::TestWithParam<Shape> {};

// Decode (plain and fused RMSNorm, bias, alpha, accumulate) and prefill (the staged rows through the
// dequantized tiles and cuBLAS) against the plugin.
TEST_P(GpuLlmInt8, DecodeAndPrefillReproduceThePluginsMatmul) {
  SKIP_WITHOUT_GPU();
  const Shape& s = GetParam();
  const Quantized q = quantize(s.spec, s.rows, s.cols, 1234);
  const float threshold = llm_int8_threshold(q);
  const std::vector<float> x = llm_int8_input(s.cols, 7), bias = random_values(s.rows, 8, 0.1f),
                           y0 = random_values(s.rows, 9, 1.f), norm = random_values(s.cols, 10, 1.f);
  for (bool fused_norm : {false, true}) {
    const std::vector<float> nw = fused_norm ? norm : std::vector<float>();
    GpuGemvCase c;
    c.x = x, c.norm_weight = nw, c.eps = 1e-5f, c.bias = bias, c.alpha = 0.5f, c.y0 = y0;
    const std::vector<float> y = gpu_gemv({&q.m}, c);
    ASSERT_EQ(int64_t(y.size()), s.rows);
    const std::vector<float> in = kernel_input(x, nw, c.eps);
    const test::LlmInt8Decomposition d = test::llm_int8_decomposition(in.data(), 1, s.cols, threshold);
    const std::vector<float> cpu = plugin_matmul({&q}, in, 1);
    int64_t outliers = 0;
    for (bool o : d.outlier) outliers += o;
    double largest_in = 0;
    for (float v : in) largest_in = std::max(largest_in, std::fabs(double(v)));
    double worst = 0;
    for (int64_t r = 0; r < s.rows; ++r) {
      // Staged as codes when sx > 0: the outliers are rounded; else (all outliers) nothing is.
      const LlmInt8Sums m = llm_int8_sums(q.dequantized, r, in, 0, s.cols, d.sx[0],
                                          [&](int64_t col) { return d.sx[0] > 0 && d.outlier[size_t(col)]; });
      const double flips = fused_norm ? double(4 + s.cols / 1024) * m.max_w * (d.sx[0] + std::ldexp(largest_in, -7)) : 0.0;
      const double tol = 0.5 * (std::ldexp(m.selected, -8) + 1e-5 * m.all + flips) + 1e-30;
      const double ref = y0[size_t(r)] + 0.5 * (double(cpu[size_t(r)]) + bf16_round(bias[size_t(r)]));
      const double err = std::fabs(y[size_t(r)] - ref);
      worst = std::max(worst, err / tol);
      ASSERT_LE(err, tol) << s.spec << " row " << r << (fused_norm ? " (fused norm)" : "");
    }
    std::printf("%s [%lld, %lld]%s: %lld outlier columns, worst GEMV error %.3g of the tolerance\n", s.spec.c_str(),
                (long long)s.rows, (long long)s.cols, fused_norm ? " fused norm" : "", (long long)outliers, worst);
  }
  // Prefill: n rows; the outlier columns are any row's.
  const int64_t n = 5;
  std::vector<float> xs = llm_int8_input(n * s.cols, 11);
  for (float& v : xs) v = bf16_round(v);
  const std::vector<float> out = gpu_gemm({&q.m}, xs, n, 3 * s.cols + 5);  // tiles of 3 rows
  const test::LlmInt8Decomposition d = test::llm_int8_decomposition(xs.data(), n, s.cols, threshold);
  const std::vector<float> cpu = plugin_matmul({&q}, xs, n);
  std::vector<float> wb(q.dequantized), staged(xs.size());
  for (float& v : wb) v = bf16_round(v);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < s.cols; ++c) staged[size_t(j * s.cols + c)] = bf16_round(d.value(xs.data(), s.cols, j, c));
  double worst_staged = 0, worst_plugin = 0;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t r = 0; r < s.rows; ++r) {
      const std::vector<float> sj(staged.begin() + j * s.cols, staged.begin() + (j + 1) * s.cols);
      const RowDot e = row_dot(wb, r, s.cols, sj);
      const double got = out[size_t(j * s.rows + r)];
      const double tol_staged = 1e-4 * e.abs_sum + 1e-30;
      ASSERT_LE(std::fabs(got - e.value), tol_staged) << s.spec << " GEMM row " << j << ", output " << r;
      const LlmInt8Sums m = llm_int8_sums(q.dequantized, r, xs, j, s.cols, d.sx[size_t(j)],
                                          [&](int64_t col) { return !d.outlier[size_t(col)]; });
      const double tol_plugin = std::ldexp(m.selected + m.all, -8) + 1e-4 * m.all + 1e-30;
      ASSERT_LE(std::fabs(got - cpu[size_t(j * s.rows + r)]), tol_plugin)
          << s.spec << " GEMM vs the plugin, row " << j << ", output " << r;
      worst_staged = std::max(worst_staged, std::fabs(got - e.value) / tol_staged);
      worst_plugin = std::max(worst_plugin, std::fabs(got - cpu[size_t(j * s.rows + r)]) / tol_plugin);
    }
  std::printf("%s [%lld, %lld] prefill: worst GEMM error %.3g of the tolerance (staged), %.3g (plugin)\n",
              s.spec.c_str(), (long long)s.rows, (long long)s.cols, worst_staged, worst_plugin);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuLlmInt8,
    ::testing::Values(
        // As int8: any shape (cols % 8 != 0: the scalar staging; an input over 48 KiB of shared memory);
        // threshold 0 (every entry int8, no outliers); 1e-30 (every nonzero entry an outlier: no code,
        // the input staged as it is).
        Shape{"llm_int8", 48, 4096}, Shape{"llm_int8", 37, 1000}, Shape{"llm_int8", 19, 97}, Shape{"llm_int8", 3, 30000},
        Shape{"llm_int8:threshold=2", 9, 11008}, Shape{"llm_int8:threshold=0", 45, 512},
        Shape{"llm_int8:threshold=1e-30", 16, 256}),
    [](const ::testing::TestParamInfo<Shape>& info) {
      return test_name(info.param.spec + "_" + std::to_string(info.param.rows) + "x" + std::to_string(info.param.cols));
    });

// The engine's stacks: SwiGLU over [gate; up] and [wq; wk; wv] with the plain GEMV (the input is
// decomposed once for the whole stack, as the CPU decomposes it for each part alike).
TEST(GpuLlmInt8Stacked, SwigluAndStackedPartsReproduceThePlugin) {
  SKIP_WITHOUT_GPU();
  const int64_t ff = 45, cols = 200;
  const Quantized gate = quantize("llm_int8", ff, cols, 21), up = quantize("llm_int8", ff, cols, 22);
  const std::vector<float> x = llm_int8_input(cols, 23), norm = random_values(cols, 24, 1.f),
                           bias = random_values(2 * ff, 25, 0.1f);
  const std::vector<float> w = stacked_values({&gate, &up});
  for (bool fused_norm : {false, true}) {
    const std::vector<float> nw = fused_norm ? norm : std::vector<float>();
    GpuGemvCase c;
    c.x = x, c.norm_weight = nw, c.bias = bias, c.swiglu = true;
    const std::vector<float> act = gpu_gemv({&gate.m, &up.m}, c);
    ASSERT_EQ(int64_t(act.size()), ff);
    const std::vector<float> in = kernel_input(x, nw, c.eps);
    const test::LlmInt8Decomposition d = test::llm_int8_decomposition(in.data(), 1, cols, 6.f);
    const std::vector<float> cpu = plugin_matmul({&gate, &up}, in, 1);
    double largest_in = 0;
    for (float v : in) largest_in = std::max(largest_in, std::fabs(double(v)));
    auto err_bound = [&](int64_t r) {
      const LlmInt8Sums m = llm_int8_sums(w, r, in, 0, cols, d.sx[0], [&](int64_t col) { return bool(d.outlier[size_t(col)]); });
      const double flips = fused_norm ? 4.0 * m.max_w * (d.sx[0] + std::ldexp(largest_in, -7)) : 0.0;
      return std::ldexp(m.selected, -8) + 1e-5 * m.all + flips;
    };
    std::vector<double> ref(static_cast<size_t>(ff));
    double largest = 0;
    for (int64_t r = 0; r < ff; ++r) {
      const double g = bf16_round(float(cpu[size_t(r)] + bf16_round(bias[size_t(r)])));
      const double u = bf16_round(float(cpu[size_t(ff + r)] + bf16_round(bias[size_t(ff + r)])));
      ref[size_t(r)] = bf16_round(float(g / (1 + std::exp(-g)))) * u;
      largest = std::max(largest, std::fabs(ref[size_t(r)]));
    }
    for (int64_t r = 0; r < ff; ++r) {
      const double g = cpu[size_t(r)] + bf16_round(bias[size_t(r)]), u = cpu[size_t(ff + r)] + bf16_round(bias[size_t(ff + r)]);
      const double eg = err_bound(r), eu = err_bound(ff + r);
      const double tol = std::ldexp(std::max(std::fabs(ref[size_t(r)]), 1e-3 * largest), -6) + 1.1 * std::fabs(u) * eg +
                         std::fabs(g / (1 + std::exp(-g))) * eu + eg * eu;
      ASSERT_LE(std::fabs(act[size_t(r)] - ref[size_t(r)]), tol) << "llm_int8 act " << r << (fused_norm ? " (fused norm)" : "");
    }
  }
  const Quantized q = quantize("llm_int8", 40, cols, 31), k = quantize("llm_int8", 12, cols, 32),
                  v = quantize("llm_int8", 12, cols, 33);
  const std::vector<float> wqkv = stacked_values({&q, &k, &v});
  GpuGemvCase c;
  c.x = x;
  const std::vector<float> y = gpu_gemv({&q.m, &k.m, &v.m}, c);
  const std::vector<float> in = kernel_input(x, {}, 0.f);
  const test::LlmInt8Decomposition d = test::llm_int8_decomposition(in.data(), 1, cols, 6.f);
  const std::vector<float> cpu = plugin_matmul({&q, &k, &v}, in, 1);
  ASSERT_EQ(y.size(), size_t(64));
  for (int64_t r = 0; r < 64; ++r) {
    const LlmInt8Sums m = llm_int8_sums(wqkv, r, in, 0, cols, d.sx[0], [&](int64_t col) { return bool(d.outlier[size_t(col)]); });
    ASSERT_LE(std::fabs(y[size_t(r)] - cpu[size_t(r)]), std::ldexp(m.selected, -8) + 1e-5 * m.all + 1e-30)
        << "llm_int8 stacked row " << r;
  }
}

double relative_l2(const std::vector<float>& a, const std::vector<float>& ref) {
  return test::relative_l2(a.data(), ref.data(), a.size());
}

std::vector<float> cpu_logits(const Model& model, std::span<const int32_t> ids, bool all) {
  Transformer cpu(model, builtin_catalog().attention.create("sdpa"));
  KvCache cache = cpu.new_cache(int64_t(ids.size()));
  SequenceStep step{&cache, ids, all ? 0 : -1};
  return cpu.forward(std::span<const SequenceStep>(&step, 1));
}

class GpuQuantModel : public ::testing::TestWithParam<std::string> {};

// The llama fixture quantized by the plugin, on the GPU and on the CPU engine.
TEST_P(GpuQuantModel, LogitsAndGreedyTokensMatchTheCpuEngine) {
  SKIP_WITHOUT_GPU();
  const std::string spec = GetParam();
  const bool llm_int8 = spec.rfind("llm_int8", 0) == 0;
  const std::string dir = test::shared_path("fixtures/hf/llama");
  const auto model = load_model(dir);
  quantize_model_weights(model->weights, builtin_catalog().quant, spec);
  GpuEngineOptions opt;
  opt.capacity = 256, opt.prefill_chunk = 64;
  auto engine = GpuEngine::create(*model, opt);
  GpuEngineOptions by8 = opt;
  by8.prefill_chunk = 8;
  auto chunked = GpuEngine::create(*model, by8);
  const auto ref = test::load_hf_reference(dir);  // its prompts; the reference here is the CPU engine
  for (int64_t b = 0; b < ref.batch; ++b) {
    const std::span<const int32_t> ids = ref.prompt(b);
    engine->reset();
    const std::vector<float> gpu = engine->forward(ids, true);
    const std::vector<float> cpu = cpu_logits(*model, ids, true);
    ASSERT_EQ(gpu.size(), cpu.size());
    const double err = relative_l2(gpu, cpu);
    std::printf("llama %s [%lld]: ||gpu - cpu|| / ||cpu|| = %.3g\n", spec.c_str(), (long long)b, err);
    EXPECT_LE(err, 3e-2) << spec;
    // Decode (the quantized GEMV) token by token against the prefill path (dequantized tiles + cuBLAS).
    engine->reset();
    std::vector<float> stepwise;
    for (int32_t id : ids) {
      const auto row = engine->forward(std::span<const int32_t>(&id, 1), false);
      stepwise.insert(stepwise.end(), row.begin(), row.end());
    }
    const double step_err = relative_l2(stepwise, gpu);
    std::printf("llama %s [%lld]: decode vs prefill path %.3g\n", spec.c_str(), (long long)b, step_err);
    EXPECT_LE(step_err, llm_int8 ? 3e-2 : 1e-2) << spec;
    // Chunks of 8 tokens: the batched GEMV where it takes the matrix (64 columns: wqkv, gate_up), the
    // dequantize + GEMM path elsewhere (down_proj's 160 columns, llm_int8).
    chunked->reset();
    const std::vector<float> by8 = chunked->forward(ids, true);
    const double chunk_err = relative_l2(by8, gpu);
    std::printf("llama %s [%lld]: chunks of 8 (batched GEMV) vs prefill path %.3g\n", spec.c_str(), (long long)b, chunk_err);
    EXPECT_LE(chunk_err, llm_int8 ? 3e-2 : 1e-2) << spec;
    // Greedy tokens (graph replays) against the CPU engine's.
    const int64_t new_tokens = 16;
    const auto gen = engine->generate_greedy(ids, new_tokens, {}, nullptr);
    ASSERT_EQ(int64_t(gen.size()), new_tokens);
    std::vector<int32_t> context(ids.begin(), ids.end());
    int64_t agree = 0;
    for (; agree < new_tokens; ++agree) {
      const std::vector<float> row = cpu_logits(*model, context, false);
      const int32_t cpu_token = int32_t(std::max_element(row.begin(), row.end()) - row.begin());
      if (cpu_token != gen[size_t(agree)]) {
        float top = 0;
        for (float v : row) top = std::max(top, std::fabs(v));
        const float gap = row[size_t(cpu_token)] - row[size_t(gen[size_t(agree)])];
        std::printf("llama %s [%lld]: first difference at token %lld, CPU logits differ by %.4g (%.2g%% of the largest)\n",
                    spec.c_str(), (long long)b, (long long)agree, gap, 100 * gap / top);
        const bool int8_activations = spec.rfind("q8_0", 0) == 0 || spec.rfind("q4_0", 0) == 0 || llm_int8;
        EXPECT_LE(std::fabs(gap), (int8_activations ? 0.05f : 0.02f) * top)
            << spec << ": the GPU left the CPU at a token that was no near tie";
        break;
      }
      context.push_back(cpu_token);
    }
    std::printf("llama %s [%lld]: greedy tokens agree for %lld of %lld\n", spec.c_str(), (long long)b, (long long)agree,
                (long long)new_tokens);
  }
  // The device holds the packed bytes: fewer than the same model in bf16.
  const auto plain = load_model(dir);
  auto bf16_engine = GpuEngine::create(*plain, opt);
  std::printf("llama %s: weights %lld bytes on the device (bf16: %lld)\n", spec.c_str(), (long long)engine->weight_bytes(),
              (long long)bf16_engine->weight_bytes());
  EXPECT_LT(engine->weight_bytes(), bf16_engine->weight_bytes()) << spec;
}

INSTANTIATE_TEST_SUITE_P(Quantizers, GpuQuantModel,
                         ::testing::Values("int8", "q8_0", "q4_0", "nf4", "fp4", "nf4:double_quant=true",
                                           "nf4:codes=bfloat16", "q4_0:lm_head=true", "llm_int8", "llm_int8:threshold=1",
                                           "llm_int8:threshold=1,lm_head=true"),
                         spec_name);

}  // namespace
}  // namespace ctx::cuda
