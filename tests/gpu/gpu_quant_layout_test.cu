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
// value * absmax, 2^-24).
#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/cuda/gpu_quant_weights.h"
#include "core/cuda/kernels/quant_formats.cuh"
#include "plugins/register_all.h"

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
  std::vector<uint32_t> lut(16 * 64);
  for (int e = 0; e < 16 * 64; ++e) lut[size_t(e)] = e % 64 < 32 ? code_entry(w.code_values[e / 64]) : 0u;
  std::vector<double> tile_dots(size_t(w.tiles * 16), 0.0);
  for (int64_t tile = 0; tile < w.tiles; ++tile)
    for (int64_t chunk = 0; chunk < w.chunks; ++chunk) {
      std::vector<std::array<std::array<double, 16>, 16>> A(F::kSteps);
      std::vector<std::array<std::array<double, 8>, 16>> B(F::kSteps);
      float scale[16][2];
      for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        uint32_t codes[F::kLaneBytes / 4];
        std::memcpy(codes, lane_codes(w, tile, chunk, lane, F::kLaneBytes), sizeof codes);
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
    const double tol = f == QuantFormat::kCode4 ? std::ldexp(1.0, -17) : f == QuantFormat::kInt8 ? std::ldexp(1.0, -23) : 1e-12;
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
                      Case{"fp4", {37}, 96}, Case{"fp4:double_quant=true,blocksize=128", {77, 77}, 1024}),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string n = info.param.spec + "_" + std::to_string(info.param.cols);
      for (int64_t r : info.param.rows) n += "_" + std::to_string(r);
      return test_name(n);
    });

TEST(GpuQuantLayout, RefusesWhatTheKernelsCannotRead) {
  const Matrix llm = quantize("llm_int8", 4, 64, 1), nf4 = quantize("nf4", 4, 48, 2), q4 = quantize("q4_0", 4, 64, 3);
  EXPECT_THROW(pack_quantized({llm.q.get()}, "m"), Unsupported);
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

}  // namespace
}  // namespace ctx::cuda
