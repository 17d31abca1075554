// The device layout of quantized weights (core/cuda/gpu_quant_weights.h: pack_quantized) decoded on
// the host by the kernels' own format policies, staged-input slots and row/part lookup
// (core/cuda/kernels/quant_formats.cuh), against the CPU plugins' dequantize(): needs nvcc, not a GPU
// (label cpu, built with CUDA). The GPU kernels add only the loop over groups and the warp sum,
// which tests/gpu/gpu_quant_test.cc checks on the device.
// Tolerances: the decoded values must equal the plugin's exactly (value * scale in float32, as the
// CPU computes them); the emulated row dot product (float64 here, from the kernel's mma fragments)
// must be the float64 product of the dequantized matrix with the bf16 input up to 1e-12 relative to
// sum |w x| (summation order; q8_0 and q4_0 codes times their fp16 d are exact in float), int8 up to
// 2^-23 (the kernel scales the row's sum, the CPU rounds each q * scale to float: 2^-24 each), nf4/fp4
// up to 2^-17 (each code value as bf16 hi + lo: |error| <= 2^-18 |value|, plus the float rounding of
// value * absmax, 2^-24); with codes=bfloat16 (one k slot per weight, the bf16 code values exact)
// 2^-23 (the CPU rounds each value * absmax to float, the kernel scales the group's sum).
// llm_int8 (LLM.int8(): int8's bytes, the input decomposed per call): the input staged with the
// kernels' own arithmetic (core/cuda/kernels/int8_activations.cuh), then the emulated GEMV (decode) or
// the dequantized values' product (prefill), against the plugin's own matmul(). The integer part is
// exact on both sides, so the only differences are the bf16 rounding of the staged values that are not
// integers (decode: the outliers x / sx, then times sx; prefill: the non-outliers code * sx), at most
// 2^-8 of each, asserted as 2^-8 * sum over those columns of (|x| + sx) |w|, plus 2^-20 * sum |x w| for
// float32 rounding on the CPU's side.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/cuda/gpu_quant_weights.h"
#include "core/cuda/kernels/int8_activations.cuh"
#include "core/cuda/kernels/quant_formats.cuh"
#include "plugins/register_all.h"
#include "tests/support/llm_int8_reference.h"

namespace ctx::cuda {
namespace {

using namespace quant_device;

struct Matrix {
  std::vector<float> data, dequantized;
  std::shared_ptr<const QuantizedMatrix> q;
};

Matrix quantize(const std::string& spec, int64_t rows, int64_t cols, uint32_t seed) {
  Matrix m;
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 0.05f);
  m.data.resize(size_t(rows * cols));
  for (float& v : m.data) v = dist(rng);
  for (size_t i = 0; i < m.data.size(); i += 89) m.data[i] *= 8.f;  // outliers set some absmax
  const WeightMatrix w{m.data.data(), rows, cols, nullptr};
  m.q = builtin_catalog().quant.create(spec)->quantize(w);
  m.dequantized.resize(m.data.size());
  m.q->dequantize(m.dequantized.data());
  return m;
}

float bf16_value(uint32_t bits) { return bf16_to_f32(uint16_t(bits)); }

// Emulates the GEMV kernel on the host: the staged input, each lane's B registers from its 16-byte
// input piece (checked against F::column) and A fragments
// from its codes (F::fragment, the nf4/fp4 table built as the kernel builds it), the mma products in
// float64 from the PTX fragment layout, the per-group scales. values: F::value() of every element.
template <class F>
void decode(const PackedQuantHost& p, const std::vector<float>& x, std::vector<float>& values, std::vector<double>& dots) {
  QuantMatrixView w = p.view;
  w.codes = p.codes.data(), w.scales = p.scales.data();
  values.assign(size_t(w.rows * w.cols), NAN);
  for (int64_t r = 0; r < w.rows; ++r) {
    const RowPos pos = row_pos(w, r);
    for (int64_t c = 0; c < w.cols; ++c) values[size_t(r * w.cols + c)] = F::value(w, pos.tile, pos.i, c, w.code_values);
  }
  // The input as the kernel stages it: bf16 in natural order, zeros up to whole chunks.
  std::vector<uint16_t> xs(size_t(w.chunks * 64), 0);
  for (int64_t c = 0; c < w.cols; ++c) xs[size_t(c)] = f32_to_bf16(x[size_t(c)]);
  std::vector<uint32_t> lut(size_t(std::max(1, F::kLutWords)));  // as the kernel's threads fill it
  F::fill_lut(w, lut.data(), 0, 1);
  std::vector<double> tile_dots(size_t(w.tiles * 16), 0.0);
  for (int64_t tile = 0; tile < w.tiles; ++tile)
    for (int64_t chunk = 0; chunk < w.chunks; ++chunk) {
      std::vector<std::array<std::array<double, 16>, 16>> A(F::kSteps);
      std::vector<std::array<std::array<double, 8>, 16>> B(F::kSteps);
      float scale[16][2];
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        uint32_t codes[F::kLaneBytes / 4];
        load_lane_codes<F::kLaneBytes>(w, tile, chunk, lane, codes);
        float s[2][2];
        chunk_scales<F>(w, tile, chunk, g, s);
        for (int h = 0; h < 2; ++h)
          for (int grp = 0; grp < 2; ++grp) scale[g + 8 * h][grp] = s[h][grp];
        for (int st = 0; st < F::kSteps; ++st) {
          uint32_t frag[4];
          F::fragment(codes, st, lut.data(), 4u * uint32_t(lane), frag);
          for (int reg = 0; reg < 4; ++reg)
            for (int e = 0; e < 2; ++e)
              A[size_t(st)][g + 8 * (reg & 1)][2 * t + 8 * (reg >> 1) + e] = bf16_value(frag[reg] >> (16 * e));
          uint4 piece;  // the lane's 8 input columns of the step's group
          std::memcpy(&piece, xs.data() + x_piece_index(chunk, st / (F::kSteps / 2), t) * 8, 16);
          uint32_t breg[2];
          F::b_regs(piece, st, breg[0], breg[1]);
          for (int bi = 0; bi < 2; ++bi)
            for (int e = 0; e < 2; ++e) {
              B[size_t(st)][2 * t + 8 * bi + e][g] = bf16_value(breg[bi] >> (16 * e));
              const int col = F::column(st, t, bi, e);
              ASSERT_EQ(uint16_t(breg[bi] >> (16 * e)), xs[size_t(chunk * 64 + col)]) << "B register column";
            }
        }
      }
      for (int grp = 0; grp < 2; ++grp)
        for (int i = 0; i < 16; ++i)
          for (int col = 0; col < 8; ++col) {  // every column of B holds x: every column of C the dot
            double sum = 0;
            for (int st = grp * F::kSteps / 2; st < (grp + 1) * F::kSteps / 2; ++st)
              for (int k = 0; k < 16; ++k) sum += A[size_t(st)][i][k] * B[size_t(st)][k][col];
            if (col == 0) tile_dots[size_t(tile * 16 + i)] += sum * scale[i][grp];
          }
    }
  dots.assign(size_t(w.rows), 0.0);
  for (int64_t r = 0; r < w.rows; ++r) {
    const RowPos pos = row_pos(w, r);
    double d = tile_dots[size_t(pos.tile * 16 + pos.i)];
    if constexpr (F::kRowScale) d *= F::row_scale(w, pos.tile, pos.i);
    dots[size_t(r)] = d;
  }
}

struct Case {
  std::string spec;
  std::vector<int64_t> rows;  // one entry per stacked part
  int64_t cols;
};

class GpuQuantLayout : public ::testing::TestWithParam<Case> {};

TEST_P(GpuQuantLayout, DecodesToThePluginsValues) {
  const Case& c = GetParam();
  std::vector<Matrix> parts;
  std::vector<const QuantizedMatrix*> qs;
  for (size_t i = 0; i < c.rows.size(); ++i) parts.push_back(quantize(c.spec, c.rows[i], c.cols, uint32_t(100 + i)));
  for (const Matrix& m : parts) qs.push_back(m.q.get());
  const PackedQuantHost p = pack_quantized(qs, "test");
  std::vector<float> expected;
  for (const Matrix& m : parts) expected.insert(expected.end(), m.dequantized.begin(), m.dequantized.end());
  std::vector<float> x(size_t(c.cols));
  std::mt19937 rng(5);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (float& v : x) v = dist(rng);
  std::vector<float> values;
  std::vector<double> dots;
  dispatch_format(p.view.format, [&]<class F>() { decode<F>(p, x, values, dots); });
  ASSERT_EQ(values.size(), expected.size());
  for (size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], expected[i]) << c.spec << " element " << i;
  for (int64_t r = 0; r < p.view.rows; ++r) {
    double ref = 0, abs_sum = 0;
    for (int64_t col = 0; col < c.cols; ++col) {
      const double t = double(expected[size_t(r * c.cols + col)]) * bf16_to_f32(f32_to_bf16(x[size_t(col)]));
      ref += t, abs_sum += std::fabs(t);
    }
    const QuantFormat f = p.view.format;
    const double tol = f == QuantFormat::kCode4                                   ? std::ldexp(1.0, -17)
                       : f == QuantFormat::kInt8 || f == QuantFormat::kCode4Bf16 ? std::ldexp(1.0, -23)
                                                                                 : 1e-12;
    if (c.spec.find("codes=bfloat16") != std::string::npos) ASSERT_EQ(int(f), int(QuantFormat::kCode4Bf16)) << c.spec;
    ASSERT_LE(std::fabs(dots[size_t(r)] - ref), tol * abs_sum + 1e-300) << c.spec << " row " << r;
  }
}

std::string test_name(std::string n) {
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(
    Formats, GpuQuantLayout,
    ::testing::Values(Case{"int8", {9}, 256}, Case{"int8", {7}, 1000}, Case{"int8", {5}, 97}, Case{"int8", {40, 12, 12}, 200},
                      Case{"q8_0", {9}, 256}, Case{"q8_0", {40, 12, 12}, 96}, Case{"q4_0", {9}, 256},
                      Case{"q4_0", {40, 12, 12}, 96}, Case{"nf4", {9}, 256}, Case{"nf4", {37}, 96},
                      Case{"nf4", {40, 12, 12}, 224}, Case{"nf4:blocksize=32", {10}, 160}, Case{"nf4:blocksize=256", {13}, 4128},
                      Case{"nf4:double_quant=true", {300}, 512}, Case{"nf4:double_quant=true", {40, 12, 12}, 224},
                      Case{"fp4", {37}, 96}, Case{"fp4:double_quant=true,blocksize=128", {77, 77}, 1024},
                      Case{"nf4:codes=bfloat16", {9}, 256}, Case{"nf4:codes=bfloat16", {40, 12, 12}, 224},
                      Case{"nf4:codes=bfloat16,blocksize=32", {10}, 160},
                      Case{"nf4:codes=bfloat16,double_quant=true", {300}, 512},
                      Case{"fp4:codes=bfloat16,blocksize=128", {77, 77}, 1024},
                      Case{"llm_int8", {40, 12, 12}, 200}, Case{"llm_int8", {5}, 97}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = info.param.spec + "_" + std::to_string(info.param.cols);
      for (int64_t r : info.param.rows) n += "_" + std::to_string(r);
      return test_name(n);
    });

// A format without a packed layout (kNone): its values come only from its own code.
class OpaqueMatrix final : public QuantizedMatrix {
 public:
  OpaqueMatrix() : QuantizedMatrix(4, 64) {}
  std::string format() const override { return "opaque"; }
  std::vector<PackedBuffer> buffers() const override { return {}; }
  void dequantize_rows(int64_t r0, int64_t r1, float* out) const override {
    std::fill(out, out + (r1 - r0) * cols(), 0.f);
  }
};

TEST(GpuQuantLayout, RefusesWhatTheKernelsCannotRead) {
  const Matrix nf4 = quantize("nf4", 4, 48, 2), q4 = quantize("q4_0", 4, 64, 3);
  const OpaqueMatrix opaque;
  try {
    pack_quantized({&opaque}, "o_proj");
    ADD_FAILURE() << "a format without a packed layout was packed";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("no GPU kernel"), std::string::npos) << e.what();
  }
  // llm_int8 stacks only with llm_int8 of the same threshold (the input is decomposed once per GEMV).
  const Matrix llm = quantize("llm_int8", 4, 64, 1), llm2 = quantize("llm_int8:threshold=2", 4, 64, 1),
               int8 = quantize("int8", 4, 64, 1);
  EXPECT_THROW(pack_quantized({llm.q.get(), int8.q.get()}, "qkv"), Unsupported);
  EXPECT_THROW(pack_quantized({llm.q.get(), llm2.q.get()}, "qkv"), Unsupported);
  try {
    pack_quantized({nf4.q.get()}, "down_proj");
    ADD_FAILURE() << "nf4 with 48 columns was packed";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("down_proj"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cols divisible by 32"), std::string::npos) << e.what();
  }
  const Matrix nf4b = quantize("nf4", 4, 64, 4);
  EXPECT_THROW(pack_quantized({q4.q.get(), nf4b.q.get()}, "qkv"), Unsupported);  // mixed formats in a stack
}

// The host's LLM.int8() staging of x [n, cols] (bf16 values) with the kernels' functions: decode
// (as_codes, n == 1: the outlier columns are the row's own entries above the threshold) or prefill (the
// outlier columns are any row's). factor[j]: what row j's dot products are multiplied by.
struct Staged {
  std::vector<float> x, factor;
  std::vector<bool> outlier;  // per column
  std::vector<float> sx;      // per row: amax / 127
};
Staged stage_llm_int8(const std::vector<float>& x, int64_t n, int64_t cols, float threshold, bool as_codes) {
  Staged s{std::vector<float>(x.size()), std::vector<float>(size_t(n)), std::vector<bool>(size_t(cols), false),
           std::vector<float>(size_t(n))};
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < cols; ++c)
      if (is_outlier(x[size_t(j * cols + c)], threshold)) s.outlier[size_t(c)] = true;
  for (int64_t j = 0; j < n; ++j) {
    float amax = 0.f, omax = 0.f;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = x[size_t(j * cols + c)];
      if (!is_outlier(v, threshold)) amax = std::max(amax, std::fabs(v));
      if (s.outlier[size_t(c)]) omax = std::max(omax, std::fabs(v));
    }
    const Int8RowScale scale = int8_row_scale(amax, omax, as_codes);
    s.factor[size_t(j)] = scale.factor(), s.sx[size_t(j)] = scale.sx;
    for (int64_t c = 0; c < cols; ++c) {
      const size_t e = size_t(j * cols + c);
      s.x[e] = bf16_to_f32(f32_to_bf16(staged_activation(x[e], s.outlier[size_t(c)], scale)));
    }
  }
  return s;
}

// n rows of cols bf16 values: N(0, 2) with every 53rd entry of each row set to +-(9 + c % 11) (above the
// default threshold 6 wherever it lands).
std::vector<float> llm_int8_input(int64_t n, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 2.f);
  std::vector<float> x(size_t(n * cols));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < cols; ++c) {
      float v = dist(rng);
      if ((c + 17 * j) % 53 == 0) v = (c % 2 ? -1.f : 1.f) * float(9 + c % 11);
      x[size_t(j * cols + c)] = bf16_to_f32(f32_to_bf16(v));
    }
  return x;
}

// The plugin's matmul() of x [n, cols] by the stacked parts: y [n, rows of the stack].
std::vector<float> plugin_matmul(const std::vector<Matrix>& parts, const std::vector<float>& x, int64_t n) {
  int64_t rows = 0;
  for (const Matrix& m : parts) rows += m.q->rows();
  std::vector<float> y(size_t(n * rows));
  int64_t r0 = 0;
  for (const Matrix& m : parts) {
    std::vector<float> part(size_t(n * m.q->rows()));
    m.q->matmul(x.data(), n, part.data());
    for (int64_t j = 0; j < n; ++j)
      for (int64_t r = 0; r < m.q->rows(); ++r) y[size_t(j * rows + r0 + r)] = part[size_t(j * m.q->rows() + r)];
    r0 += m.q->rows();
  }
  return y;
}

// |gpu - cpu| for row j, output r within the bound of the header: `rounded` says which columns' staged
// values are rounded (decode: the outliers when staged as codes; prefill: the others).
void expect_llm_int8_close(double gpu, double cpu, const std::vector<float>& w, int64_t r, const std::vector<float>& x,
                           int64_t j, int64_t cols, const std::function<bool(int64_t)>& rounded, float sx,
                           const std::string& what) {
  double rounding = 0, mag = 0;
  for (int64_t c = 0; c < cols; ++c) {
    const double wx = std::fabs(double(w[size_t(r * cols + c)]));
    const double xa = std::fabs(double(x[size_t(j * cols + c)]));
    mag += wx * (xa + sx);
    if (rounded(c)) rounding += wx * (xa + sx);
  }
  ASSERT_LE(std::fabs(gpu - cpu), std::ldexp(rounding, -8) + std::ldexp(mag, -20) + 1e-30)
      << what << " row " << j << " output " << r;
}

struct LlmInt8Case {
  std::string spec;
  std::vector<int64_t> rows;
  int64_t cols;
};

class GpuLlmInt8Staging : public ::testing::TestWithParam<LlmInt8Case> {};

// Decode: the input restaged as codes in the GEMV's shared memory, the emulated tensor-core pass over
// the packed int8 bytes, times the input's scale; prefill: the rows staged as values times the
// dequantized matrix. Both against the plugin's matmul().
TEST_P(GpuLlmInt8Staging, ReproducesThePluginsMatmul) {
  const LlmInt8Case& c = GetParam();
  std::vector<Matrix> parts;
  std::vector<const QuantizedMatrix*> qs;
  for (size_t i = 0; i < c.rows.size(); ++i) parts.push_back(quantize(c.spec, c.rows[i], c.cols, uint32_t(200 + i)));
  for (const Matrix& m : parts) qs.push_back(m.q.get());
  const PackedQuantHost p = pack_quantized(qs, "test");
  ASSERT_TRUE(p.view.int8_activations);
  ASSERT_EQ(p.view.format, QuantFormat::kInt8);
  const float threshold = p.view.outlier_threshold;
  std::vector<float> w;
  for (const Matrix& m : parts) w.insert(w.end(), m.dequantized.begin(), m.dequantized.end());
  const int64_t rows = p.view.rows;

  const std::vector<float> x = llm_int8_input(1, c.cols, 7);
  const Staged d = stage_llm_int8(x, 1, c.cols, threshold, true);
  int64_t outliers = 0;
  for (bool o : d.outlier) outliers += o;
  if (threshold > 0) {
    EXPECT_GT(outliers, 0) << "the input has no outlier column";
  } else {
    EXPECT_EQ(outliers, 0);
  }
  EXPECT_EQ(d.factor[0], d.sx[0]) << "staged as codes";
  // Element by element against the plugin's decomposition: the same outlier columns and codes.
  const test::LlmInt8Decomposition ref = test::llm_int8_decomposition(x.data(), 1, c.cols, threshold);
  ASSERT_EQ(d.sx[0], ref.sx[0]);
  for (int64_t col = 0; col < c.cols; ++col) {
    ASSERT_EQ(d.outlier[size_t(col)], ref.outlier[size_t(col)]) << "column " << col;
    if (ref.outlier[size_t(col)]) {
      const double exact = double(x[size_t(col)]) / ref.sx[0];
      ASSERT_LE(std::fabs(d.x[size_t(col)] - exact), std::ldexp(std::fabs(exact), -8)) << "outlier column " << col;
    } else {
      ASSERT_EQ(d.x[size_t(col)], float(ref.code[size_t(col)])) << "code of column " << col;
    }
  }
  std::vector<float> values;
  std::vector<double> dots;
  decode<Int8Format>(p, d.x, values, dots);
  const std::vector<float> cpu = plugin_matmul(parts, x, 1);
  for (int64_t r = 0; r < rows; ++r)
    expect_llm_int8_close(dots[size_t(r)] * d.factor[0], cpu[size_t(r)], w, r, x, 0, c.cols,
                          [&](int64_t col) { return bool(d.outlier[size_t(col)]); }, d.sx[0], c.spec + " decode");

  const int64_t n = 5;
  const std::vector<float> xs = llm_int8_input(n, c.cols, 8);
  const Staged s = stage_llm_int8(xs, n, c.cols, threshold, false);
  const std::vector<float> cpu_n = plugin_matmul(parts, xs, n);
  const test::LlmInt8Decomposition ref_n = test::llm_int8_decomposition(xs.data(), n, c.cols, threshold);
  for (int64_t col = 0; col < c.cols; ++col) ASSERT_EQ(s.outlier[size_t(col)], ref_n.outlier[size_t(col)]) << col;
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_EQ(s.factor[size_t(j)], 1.f);
    for (int64_t col = 0; col < c.cols; ++col)
      ASSERT_EQ(s.x[size_t(j * c.cols + col)], bf16_to_f32(f32_to_bf16(ref_n.value(xs.data(), c.cols, j, col))))
          << "row " << j << " column " << col;
    for (int64_t r = 0; r < rows; ++r) {
      double y = 0;
      for (int64_t col = 0; col < c.cols; ++col) y += double(w[size_t(r * c.cols + col)]) * s.x[size_t(j * c.cols + col)];
      expect_llm_int8_close(y, cpu_n[size_t(j * rows + r)], w, r, xs, j, c.cols,
                            [&](int64_t col) { return !s.outlier[size_t(col)]; }, s.sx[size_t(j)], c.spec + " prefill");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuLlmInt8Staging,
                         ::testing::Values(LlmInt8Case{"llm_int8", {9}, 256}, LlmInt8Case{"llm_int8", {40, 12, 12}, 200},
                                           LlmInt8Case{"llm_int8", {7}, 1000}, LlmInt8Case{"llm_int8", {5}, 97},
                                           LlmInt8Case{"llm_int8:threshold=3", {16}, 4096},
                                           LlmInt8Case{"llm_int8:threshold=0", {9}, 256}),
                         [](const ::testing::TestParamInfo<LlmInt8Case>& info) {
                           std::string n = info.param.spec + "_" + std::to_string(info.param.cols);
                           for (int64_t r : info.param.rows) n += "_" + std::to_string(r);
                           return test_name(n);
                         });

// Inputs where the codes staging cannot be used (no non-outlier magnitude, or outliers / sx beyond
// bf16): staged as values (factor 1), still the plugin's product. And an all-zero input.
TEST(GpuLlmInt8Staging, DegenerateInputsFallBackToValues) {
  const std::vector<Matrix> parts{quantize("llm_int8", 9, 128, 300)};
  const PackedQuantHost p = pack_quantized({parts[0].q.get()}, "test");
  const float threshold = p.view.outlier_threshold;
  std::vector<float> all_outliers(128), tiny_rest(128, 0.f), zeros(128, 0.f);
  for (int64_t c = 0; c < 128; ++c) all_outliers[size_t(c)] = c % 2 ? 7.f + float(c % 5) : -8.f - float(c % 5);
  tiny_rest[3] = 1e-36f, tiny_rest[5] = -20.f, tiny_rest[6] = 12.f;
  for (const std::vector<float>& x : {all_outliers, tiny_rest, zeros}) {
    const Staged d = stage_llm_int8(x, 1, 128, threshold, true);
    EXPECT_EQ(d.factor[0], 1.f);
    std::vector<float> values;
    std::vector<double> dots;
    decode<Int8Format>(p, d.x, values, dots);
    const std::vector<float> cpu = plugin_matmul(parts, x, 1);
    for (int64_t r = 0; r < 9; ++r) {
      ASSERT_TRUE(std::isfinite(dots[size_t(r)]));
      expect_llm_int8_close(dots[size_t(r)], cpu[size_t(r)], parts[0].dequantized, r, x, 0, 128,
                            [&](int64_t col) { return !d.outlier[size_t(col)]; }, d.sx[0], "degenerate");
    }
  }
}

}  // namespace
}  // namespace ctx::cuda
