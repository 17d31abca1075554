// The device layout of quantized weights (core/cuda/gpu_quant_weights.h: pack_quantized) decoded on
// the host by the kernels' own format policies, staged-input slots and row/part lookup
// (core/cuda/kernels/quant_formats.cuh), against the CPU plugins' dequantize(): needs nvcc, not a GPU
// (label cpu, built with CUDA). The GPU kernels add only the loop over groups and the warp sum,
// which tests/gpu/gpu_quant_test.cc checks on the device.
// Tolerances: the decoded values must equal the plugin's exactly (value * scale in float32, as the
// CPU computes them); the emulated row dot product (float64 here) must be the float64 product of
// the dequantized matrix with the bf16 input up to 1e-12 relative to sum |w x| (summation order).
#include <gtest/gtest.h>

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

// Decodes every group of the packed stack as the kernels do: values [rows, cols] (checking that the
// padding decodes to 0) and each row's dot product with x staged in the kernel's slots.
template <class F>
void decode(const PackedQuantHost& p, const std::vector<float>& x, std::vector<float>& values, std::vector<double>& dots) {
  QuantMatrixView w = p.view;
  w.codes = p.codes.data(), w.scales = p.scales.data();
  w.absmax2 = p.absmax2.empty() ? nullptr : p.absmax2.data();
  w.dynamic_map = p.dynamic_map.empty() ? nullptr : p.dynamic_map.data();
  std::vector<uint4> staged(size_t(w.groups * 4), make_uint4(0, 0, 0, 0));
  auto* xs = reinterpret_cast<uint16_t*>(staged.data());
  for (int64_t c = 0; c < w.cols; ++c) xs[XSlot()(c)] = f32_to_bf16(x[size_t(c)]);
  values.assign(size_t(w.rows * w.cols), NAN);
  dots.assign(size_t(w.rows), 0.0);
  for (int64_t r = 0; r < w.rows; ++r) {
    const RowRef row = row_ref(w, r);
    for (int64_t g = 0; g < w.groups; ++g) {
      uint4 codes[F::kVecs];
      std::memcpy(codes, w.codes + (r * w.groups + g) * 16 * F::kVecs, sizeof codes);
      const float s = F::scale(w, row, g);
      for (int k = 0; k < 4; ++k) {
        float v[8];
        F::dequant(codes, k, w.code_values, v);
        const uint4 piece = x_piece(staged.data(), g, k);
        const auto* xb = reinterpret_cast<const uint16_t*>(&piece);
        for (int i = 0; i < 8; ++i) {
          const int64_t c = 32 * g + 8 * k + i;
          const float value = v[i] * s;
          if (c < w.cols) {
            values[size_t(r * w.cols + c)] = value;
          } else {
            ASSERT_EQ(value, 0.f) << "padding of row " << r;
          }
          dots[size_t(r)] += double(value) * bf16_to_f32(xb[i]);
        }
      }
    }
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
    ASSERT_LE(std::fabs(dots[size_t(r)] - ref), 1e-12 * abs_sum + 1e-300) << c.spec << " row " << r;
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
