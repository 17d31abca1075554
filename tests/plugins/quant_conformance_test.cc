// Every registered weight quantizer (catalog.quant.names(), so a new format is tested automatically):
// round-trip error within the format's stated bound against a float64 reference, matmul against a
// float64 product of the dequantized matrix for decode and prefill sizes and odd shapes, exact bytes
// and bits per weight, the bitsandbytes code tables, packed layouts of hand-built blocks, errors, and
// whole fixture models run quantized.
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <tuple>

#include "core/base/dtype.h"
#include "core/model/generate.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "core/quant/quantize_model.h"
#include "plugins/quant/common/q8_kernels.h"
#include "plugins/register_all.h"
#include "tests/support/attention.h"
#include "tests/support/error_of.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

const Registry<Quantizer>& quant() { return builtin_catalog().quant; }

std::vector<std::string> quant_names() { return quant().names(); }

// Normal weights with a few large ones per row (outliers stress absmax scaling).
std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(size_t(rows * cols));
  for (float& v : w) v = normal(rng);
  for (int64_t r = 0; r < rows; ++r) w[size_t(r * cols + (r * 7) % cols)] *= 20.0f;
  return w;
}

std::shared_ptr<const QuantizedMatrix> quantize(const std::string& spec, const std::vector<float>& w, int64_t rows, int64_t cols) {
  return quant().create(spec)->quantize(WeightMatrix{w.data(), rows, cols, nullptr});
}

std::vector<float> dequantized(const QuantizedMatrix& q) {
  std::vector<float> out(size_t(q.rows() * q.cols()));
  q.dequantize(out.data());
  return out;
}

// ---- stated round-trip bounds: max |w - dequantized(w)| per element, from the float64 data ----

using BoundFn = std::function<std::vector<double>(const std::vector<float>& w, int64_t rows, int64_t cols)>;

double fp16_error(double d) { return std::fabs(d - double(f16_to_f32(f32_to_f16(float(d))))); }

// Per row: absmax / 127 / 2 (round to nearest), plus float rounding.
std::vector<double> rowwise_int8_bound(const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<double> b(w.size());
  for (int64_t r = 0; r < rows; ++r) {
    double amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(double(w[size_t(r * cols + c)])));
    for (int64_t c = 0; c < cols; ++c) b[size_t(r * cols + c)] = amax / 127 / 2 * (1 + 1e-5) + 1e-9;
  }
  return b;
}

// Per flat block of `block` weights: f(absmax) for every element.
std::vector<double> per_block(const std::vector<float>& w, int64_t block, const std::function<double(double, double)>& f) {
  std::vector<double> b(w.size());
  for (size_t b0 = 0; b0 < w.size(); b0 += size_t(block)) {
    const size_t b1 = std::min(w.size(), b0 + size_t(block));
    double amax = 0, signed_max = 0;
    for (size_t i = b0; i < b1; ++i)
      if (std::fabs(double(w[i])) > amax) amax = std::fabs(double(w[i])), signed_max = double(w[i]);
    for (size_t i = b0; i < b1; ++i) b[i] = f(amax, signed_max);
  }
  return b;
}

// NF4: half the largest gap of the table (between -1 and -0.6961928); FP4: between 2/3 and 1.
constexpr double kNf4HalfGap = (1.0 - 0.6961928009986877) / 2, kFp4HalfGap = (1.0 - 8.0 / 12.0) / 2;

const std::map<std::string, BoundFn>& bounds() {
  static const std::map<std::string, BoundFn> m = {
      {"int8", rowwise_int8_bound},
      {"llm_int8", rowwise_int8_bound},
      // q8_0: d = absmax / 127 rounded to fp16; error <= d / 2 plus 127 * |d - fp16(d)|.
      {"q8_0", [](const std::vector<float>& w, int64_t, int64_t) {
         return per_block(w, 32, [](double amax, double) { return amax / 127 / 2 * (1 + 1e-5) + 127 * fp16_error(amax / 127) + 1e-9; });
       }},
      // q4_0: d = m / -8; values with x / d in (7.5, 8] clamp to 15 (error up to |d|), others round
      // to nearest (|d| / 2); plus 8 * |d - fp16(d)|.
      {"q4_0", [](const std::vector<float>& w, int64_t, int64_t) {
         return per_block(w, 32, [](double amax, double m) { return amax / 8 * (1 + 1e-5) + 8 * fp16_error(m / -8) + 1e-9; });
       }},
      {"nf4", [](const std::vector<float>& w, int64_t, int64_t) {
         return per_block(w, 64, [](double amax, double) { return amax * kNf4HalfGap * (1 + 1e-5) + 1e-9; });
       }},
      {"fp4", [](const std::vector<float>& w, int64_t, int64_t) {
         return per_block(w, 64, [](double amax, double) { return amax * kFp4HalfGap * (1 + 1e-5) + 1e-9; });
       }},
  };
  return m;
}

class QuantFormat : public ::testing::TestWithParam<std::string> {
 protected:
  bool is_none() const { return GetParam() == "none"; }
};

TEST_P(QuantFormat, NoneKeepsFloatOthersQuantize) {
  const auto w = random_matrix(8, 64, 1);
  const auto q = quantize(GetParam(), w, 8, 64);
  EXPECT_EQ(q == nullptr, is_none());
  if (q) {
    EXPECT_EQ(q->rows(), 8);
    EXPECT_EQ(q->cols(), 64);
    EXPECT_FALSE(q->format().empty());
  }
}

TEST_P(QuantFormat, RoundTripErrorWithinStatedBound) {
  if (is_none()) GTEST_SKIP() << "none keeps float32";
  const auto it = bounds().find(GetParam());
  ASSERT_NE(it, bounds().end()) << "format '" << GetParam() << "' has no stated round-trip bound in this test: add one";
  const int64_t rows = 24, cols = 256;
  const auto w = random_matrix(rows, cols, 2);
  const auto q = quantize(GetParam(), w, rows, cols);
  const auto d = dequantized(*q);
  const auto bound = it->second(w, rows, cols);
  double worst = 0;  // largest error / bound; also guards against a bound that is never approached
  for (size_t i = 0; i < w.size(); ++i) {
    const double err = std::fabs(double(w[i]) - double(d[i]));
    ASSERT_LE(err, bound[i]) << "element " << i << ": " << w[i] << " -> " << d[i];
    worst = std::max(worst, err / bound[i]);
  }
  EXPECT_GT(worst, 0.2) << "the stated bound is far looser than the format";
}

// LLM.int8's activation quantization (see llm_int8_quant.cc): outlier columns and, per row of x, the
// int8 step; the int8 part of an output is off by at most step / 2 * sum |w| over non-outlier columns.
struct LlmInt8Activations {
  std::vector<bool> outlier;  // per column
  std::vector<double> step;   // per row of x: absmax / 127 over |x| <= 6
};

LlmInt8Activations llm_int8_activations(const std::vector<float>& x, int64_t n, int64_t cols, double threshold = 6.0) {
  LlmInt8Activations a{std::vector<bool>(size_t(cols), false), std::vector<double>(size_t(n), 0)};
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = std::fabs(double(x[size_t(j * cols + c)]));
      if (v > threshold) a.outlier[size_t(c)] = true;
      else a.step[size_t(j)] = std::max(a.step[size_t(j)], v / 127);
    }
  return a;
}

// llama.cpp's q8_0 activation blocks (plugins/quant/common/ggml_blocks.h): per block of 32 entries of
// a row of x, the step is max |x| / 127 over the block; an output is off by at most step / 2 times
// sum |w| over the block's columns.
bool quantizes_activations_q8_0(const std::string& format) { return format == "q8_0" || format == "q4_0"; }

std::vector<double> q8_0_activation_steps(const std::vector<float>& x, int64_t n, int64_t cols) {
  std::vector<double> step(size_t(n * cols), 0);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t b = 0; b + 32 <= cols; b += 32) {
      double amax = 0;
      for (int64_t c = b; c < b + 32; ++c) amax = std::max(amax, std::fabs(double(x[size_t(j * cols + c)])));
      for (int64_t c = b; c < b + 32; ++c) step[size_t(j * cols + c)] = amax / 127;
    }
  return step;
}

// activations=q8_0 (int8, nf4, fp4: an explicit choice, the float path stays their default and
// reference) runs the integer kernel of plugins/quant/common/q8_kernels.h: the activations are rounded
// as for q8_0 above, and nf4/fp4 codes enter as T[i] = round(127 * table[i]), so each weight is also
// off by up to e = max_i |T[i] / 127 - table[i]| times its block's absmax (blockwise_4bit.h).
bool uses_q8_activations(const std::string& spec) {
  return quantizes_activations_q8_0(spec) || spec.find("activations=q8_0") != std::string::npos;
}

double table_i8_error(const double* table, double normalizer) {
  double e = 0;
  for (int i = 0; i < 16; ++i) {
    const double v = table[i] / normalizer;
    e = std::max(e, std::fabs(std::round(127 * v) / 127 - v));
  }
  return e;
}

// The format's code-table error in the integer kernel and its blocksize (0: codes are exact).
std::pair<double, int64_t> q8_table_error(const std::string& format, const std::string& spec);

// Every output of matmul() within its stated bound of the float64 product of dequantize(): float
// rounding (1e-5 relative), plus the activation quantization of the format or spec.
void check_matmul(const std::string& spec, const std::string& format) {
  struct Shape {
    int64_t rows, cols;
  };
  // Whole blocks; cols not a multiple of 64 (4-bit blocks cross rows); odd shapes.
  for (const Shape s : {Shape{37, 256}, Shape{16, 96}, Shape{5, 70}, Shape{40, 33}}) {
    const auto w = random_matrix(s.rows, s.cols, 3);
    std::shared_ptr<const QuantizedMatrix> q;
    try {
      q = quantize(spec, w, s.rows, s.cols);
    } catch (const Unsupported& e) {
      const std::string shape = "[" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "]";
      EXPECT_NE(std::string(e.what()).find(shape), std::string::npos) << "refusal must name the shape: " << e.what();
      continue;
    }
    const auto d = dequantized(*q);
    const auto [table_err, blocksize] = q8_table_error(format, spec);
    // The absmax of each element's (flat) block as the kernel uses it (8-bit with double_quant): the
    // largest |dequantized| value of the block, whose code is +-1.
    std::vector<double> block_absmax(w.size(), 0);
    if (table_err > 0)
      for (size_t b0 = 0; b0 < w.size(); b0 += size_t(blocksize)) {
        double amax = 0;
        for (size_t i = b0; i < std::min(w.size(), b0 + size_t(blocksize)); ++i) amax = std::max(amax, std::fabs(double(d[i])));
        for (size_t i = b0; i < std::min(w.size(), b0 + size_t(blocksize)); ++i) block_absmax[i] = amax;
      }
    for (int64_t n : {1, 3, 8, 9, 64}) {
      std::mt19937 rng(static_cast<uint32_t>(n));
      std::normal_distribution<float> normal(0.0f, 1.0f);
      std::vector<float> x(size_t(n * s.cols)), y(size_t(n * s.rows), NAN);
      for (float& v : x) v = normal(rng);
      x[size_t(s.cols / 3)] = 9.5f;  // an activation outlier (LLM.int8 threshold 6)
      q->matmul(x.data(), n, y.data());
      const auto act = llm_int8_activations(x, n, s.cols);
      const auto q8_step = q8_0_activation_steps(x, n, s.cols);
      // The q8 path runs only where its blocks fit (cols % 32 and, for 4-bit, cols % blocksize == 0);
      // elsewhere the float path runs and the 1e-5 tolerance alone would hold.
      const bool q8 = uses_q8_activations(spec);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t r = 0; r < s.rows; ++r) {
          double ref = 0, mag = 0, act_err = 0, q8_err = 0, tab_err = 0;
          for (int64_t c = 0; c < s.cols; ++c) {
            const size_t i = size_t(r * s.cols + c);
            const double wv = d[i], xv = x[size_t(j * s.cols + c)], step = q8_step[size_t(j * s.cols + c)];
            ref += wv * xv;
            mag += std::fabs(wv * xv);
            if (!act.outlier[size_t(c)]) act_err += std::fabs(wv) * act.step[size_t(j)] / 2;
            q8_err += std::fabs(wv) * step / 2;
            tab_err += table_err * block_absmax[i] * (std::fabs(xv) + step / 2);
          }
          const double tol = 1e-5 * mag + 1e-6 + (format == "llm_int8" ? act_err * (1 + 1e-4) : 0.0) +
                             (q8 ? (q8_err + tab_err) * (1 + 1e-4) : 0.0);
          ASSERT_NEAR(y[size_t(j * s.rows + r)], ref, tol)
              << spec << " shape [" << s.rows << ", " << s.cols << "] n " << n << " row " << j << " out " << r;
        }
    }
  }
}

TEST_P(QuantFormat, MatmulMatchesDequantizedReference) {
  if (is_none()) GTEST_SKIP() << "none keeps float32";
  check_matmul(GetParam(), GetParam());
}

TEST_P(QuantFormat, BytesAreTheBuffersAndBitsPerWeightAreExact) {
  if (is_none()) GTEST_SKIP() << "none keeps float32";
  // Expected bits per weight of a [64, 256] matrix, from each format's definition.
  const std::map<std::string, double> expected = {
      {"int8", 8 + 32.0 / 256}, {"llm_int8", 8 + 32.0 / 256}, {"q8_0", 8.5}, {"q4_0", 4.5},
      {"nf4", 4 + 32.0 / 64},   {"fp4", 4 + 32.0 / 64}};
  const auto it = expected.find(GetParam());
  ASSERT_NE(it, expected.end()) << "format '" << GetParam() << "' has no expected bits/weight in this test: add one";
  const auto w = random_matrix(64, 256, 4);
  const auto q = quantize(GetParam(), w, 64, 256);
  int64_t sum = 0;
  for (const PackedBuffer& b : q->buffers()) {
    EXPECT_NE(b.data, nullptr) << b.name;
    sum += b.bytes;
  }
  EXPECT_EQ(q->bytes(), sum);
  EXPECT_DOUBLE_EQ(q->bits_per_weight(), it->second);
}

INSTANTIATE_TEST_SUITE_P(AllFormats, QuantFormat, ::testing::ValuesIn(quant_names()),
                         [](const auto& info) { return info.param; });

// ---- format details ----

const PackedBuffer& buffer(const std::vector<PackedBuffer>& bufs, const std::string& name) {
  for (const PackedBuffer& b : bufs)
    if (b.name == name) return b;
  ADD_FAILURE() << "no buffer '" << name << "'";
  static const PackedBuffer none;
  return none;
}

std::vector<uint8_t> bytes_of(const PackedBuffer& b) {
  const auto* p = static_cast<const uint8_t*>(b.data);
  return p ? std::vector<uint8_t>(p, p + b.bytes) : std::vector<uint8_t>{};
}

TEST(QuantDoubleQuant, Nf4DoubleQuantBytesAndBound) {
  // [128, 128]: 256 blocks of 64 -> 8192 code bytes + 256 absmax_q + one absmax2 + the offset.
  const auto w = random_matrix(128, 128, 5);
  const auto q = quantize("nf4:double_quant=true", w, 128, 128);
  EXPECT_EQ(q->bytes(), 8192 + 256 + 4 + 4);
  EXPECT_DOUBLE_EQ(q->bits_per_weight(), 4 + 8.0 / 64 + 32.0 / (256 * 64) + 32.0 / (128 * 128));
  // Error: NF4's half gap times the (8-bit) absmax, plus the absmax error, which is at most half the
  // largest gap of the dynamic map (0.9 / 64 / 2 of the top decade) times max |absmax - mean|.
  std::vector<double> absmax;
  for (size_t b = 0; b < w.size(); b += 64) {
    double a = 0;
    for (size_t i = b; i < b + 64; ++i) a = std::max(a, std::fabs(double(w[i])));
    absmax.push_back(a);
  }
  double mean = 0, spread = 0;
  for (double a : absmax) mean += a / double(absmax.size());
  for (double a : absmax) spread = std::max(spread, std::fabs(a - mean));
  const double absmax_err = 0.9 / 64 / 2 * spread * (1 + 1e-4);
  const auto d = dequantized(*q);
  for (size_t i = 0; i < w.size(); ++i)
    ASSERT_LE(std::fabs(double(w[i]) - d[i]), (absmax[i / 64] + absmax_err) * kNf4HalfGap + absmax_err + 1e-7) << i;
  // And matmul still equals the product of its own dequantized values.
  std::vector<float> x(128, 0.5f), y(128);
  q->matmul(x.data(), 1, y.data());
  for (int64_t r = 0; r < 128; ++r) {
    double ref = 0;
    for (int64_t c = 0; c < 128; ++c) ref += 0.5 * d[size_t(r * 128 + c)];
    EXPECT_NEAR(y[size_t(r)], ref, 1e-5);
  }
}

// bitsandbytes/functional.py, get_4bit_type("nf4") (data list, already normalized).
const double kBnbNf4[16] = {-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                            -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                            0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                            0.7229568362236023, 1.0};
// bitsandbytes/functional.py, get_4bit_type("fp4"): data list, then `data /= data.abs().max()` (12).
const double kBnbFp4Raw[16] = {0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0};

std::pair<double, int64_t> q8_table_error(const std::string& format, const std::string& spec) {
  if (spec.find("activations=q8_0") == std::string::npos) return {0.0, 0};
  int64_t blocksize = 64;
  if (const size_t p = spec.find("blocksize="); p != std::string::npos) blocksize = std::stoll(spec.substr(p + 10));
  if (format == "nf4") return {table_i8_error(kBnbNf4, 1.0), blocksize};
  if (format == "fp4") return {table_i8_error(kBnbFp4Raw, 12.0), blocksize};
  return {0.0, 0};  // int8: the kernel reads the weights' own int8 codes
}

// A [1, 64] block whose absmax is 1 and whose element 2i / 2i+1 is table value `order[i]`: each
// element must encode to its own code, so the dequantized values are the table and the codes are
// known bytes (element 2k in the high nibble).
void check_table(const std::string& name, const std::vector<float>& table) {
  std::vector<float> w(64, 0.0f);
  // -0 is the code of small negative values (a zero has the positive code, as in bitsandbytes).
  for (int i = 0; i < 16; ++i) w[size_t(i)] = table[size_t(i)] == 0 && std::signbit(table[size_t(i)]) ? -1e-4f : table[size_t(i)];
  w[63] = 1.0f;  // absmax 1 even if the table's own 1 is missing
  const auto q = quantize(name, w, 1, 64);
  const auto d = dequantized(*q);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(d[size_t(i)], table[size_t(i)]) << name << " code " << i;
  const auto codes = bytes_of(buffer(q->buffers(), "codes"));
  ASSERT_EQ(codes.size(), 32u);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(codes[size_t(k)], uint8_t((2 * k) << 4 | (2 * k + 1))) << name << " byte " << k;
  EXPECT_EQ(bytes_of(buffer(q->buffers(), "absmax")), bytes_of({"", &w[63], 4}));
}

TEST(QuantTables, Nf4EqualsBitsandbytes) {
  std::vector<float> t;
  for (double v : kBnbNf4) t.push_back(float(v));
  check_table("nf4", t);
}

TEST(QuantTables, Fp4EqualsBitsandbytes) {
  std::vector<float> t;
  for (double v : kBnbFp4Raw) t.push_back(float(v) / 12.0f);
  check_table("fp4", t);
}

// codes=bfloat16: the same codes, the table rounded to bfloat16 (bitsandbytes' 4-bit GEMV with a
// bfloat16 compute dtype holds it so), and matmul the product of those values.
TEST(QuantTables, Bf16CodesAreTheTableRoundedToBfloat16) {
  for (const auto& [name, raw, scale] : {std::tuple{"nf4", kBnbNf4, 1.0}, std::tuple{"fp4", kBnbFp4Raw, 12.0}}) {
    std::vector<float> t;
    bool any_rounded = false;
    for (int i = 0; i < 16; ++i) {
      const float v = float(raw[i] / scale), r = bf16_to_f32(f32_to_bf16(v));
      any_rounded |= r != v;
      t.push_back(r);
    }
    EXPECT_TRUE(any_rounded) << name << ": the table has values that are not bfloat16";
    const std::string spec = std::string(name) + ":codes=bfloat16";
    check_table(spec, t);
    const auto w = random_matrix(8, 128, 9);
    const auto q = quantize(spec, w, 8, 128);
    EXPECT_EQ(q->format(), std::string(name) + "(blocksize=64,codes=bfloat16)");
    const auto exact = quantize(name, w, 8, 128);
    EXPECT_EQ(bytes_of(buffer(q->buffers(), "codes")), bytes_of(buffer(exact->buffers(), "codes"))) << name;
    const auto d = dequantized(*q);
    std::vector<float> x(128), y(8);
    for (int c = 0; c < 128; ++c) x[size_t(c)] = float(c % 7) - 3.f;
    q->matmul(x.data(), 1, y.data());
    for (int64_t r = 0; r < 8; ++r) {
      double ref = 0, mag = 0;
      for (int64_t c = 0; c < 128; ++c) ref += double(d[size_t(r * 128 + c)]) * x[size_t(c)], mag += std::fabs(d[size_t(r * 128 + c)] * x[size_t(c)]);
      EXPECT_NEAR(y[size_t(r)], ref, 1e-6 * mag + 1e-12) << spec << " row " << r;
    }
  }
  EXPECT_NE(test::error_of([] { quant().create("nf4:codes=float16"); }).find("codes"), std::string::npos);
}

TEST(QuantLayout, Q4_0Block) {
  // m = -8 -> d = 1 (fp16 0x3C00); x[j] = j - 8 -> q = j; x[16 + j] = 7 - j -> q = 15 - j.
  std::vector<float> w(32);
  for (int j = 0; j < 16; ++j) w[size_t(j)] = float(j - 8), w[size_t(16 + j)] = float(7 - j);
  const auto q = quantize("q4_0", w, 1, 32);
  std::vector<uint8_t> want = {0x00, 0x3C};
  for (int j = 0; j < 16; ++j) want.push_back(uint8_t(j | (15 - j) << 4));
  EXPECT_EQ(bytes_of(buffer(q->buffers(), "blocks")), want);
  EXPECT_EQ(dequantized(*q), w);
}

TEST(QuantLayout, Q8_0Block) {
  // absmax 127 -> d = 1 (fp16 0x3C00), q = x.
  std::vector<float> w(32);
  for (int j = 0; j < 32; ++j) w[size_t(j)] = float(j % 2 ? -4 * j : 4 * j);
  w[5] = 127.0f;
  const auto q = quantize("q8_0", w, 1, 32);
  std::vector<uint8_t> want = {0x00, 0x3C};
  for (float v : w) want.push_back(uint8_t(int8_t(v)));
  EXPECT_EQ(bytes_of(buffer(q->buffers(), "blocks")), want);
}

TEST(QuantLayout, Int8Rows) {
  // Row 0: absmax 127 -> scale 1; -63.5 and 0.5 round half to even (-64, 0), as torch.round.
  // Row 1: absmax 2 -> 1.5 * 127 / 2 = 95.25 -> 95, -2 -> -127.
  const std::vector<float> w = {127.0f, -63.5f, 0.5f, 1.5f, 0.0f, -2.0f};
  for (const std::string name : {"int8", "llm_int8"}) {
    const auto q = quantize(name, w, 2, 3);
    EXPECT_EQ(bytes_of(buffer(q->buffers(), "int8")), (std::vector<uint8_t>{127, uint8_t(-64), 0, 95, 0, uint8_t(-127)})) << name;
  }
}

TEST(QuantErrors, RefusalsAndBadParameters) {
  const auto w = random_matrix(5, 70, 6);
  for (const std::string name : {"q4_0", "q8_0"}) {
    const std::string msg = test::error_of([&] { quantize(name, w, 5, 70); });
    EXPECT_NE(msg.find("[5, 70]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("divisible by 32"), std::string::npos) << msg;
  }
  EXPECT_NE(test::error_of([] { quant().create("nf4:blocksize=96"); }).find("blocksize 96 is not a power of two"), std::string::npos);
  EXPECT_NE(test::error_of([] { quant().create("nf4:blocksize=16"); }).find("blocksize"), std::string::npos);
  EXPECT_NE(test::error_of([] { quant().create("q5_k"); }).find("unknown quant plugin 'q5_k'"), std::string::npos);
}

// ---- whole models ----

// Per format on the llama fixture, prompt 0 teacher-forced: max |logit diff| / max |logit| against
// transformers' float32 reference, and the fraction of positions whose argmax agrees; then the
// number of leading greedy tokens (of 16, through the KV cache) that must equal the reference's.
// The fixture's random weights give near-tied logits: q8_0 (max diff 1.8%, like int8) swaps a
// near-tie at the third greedy token, after which the continuations differ.
struct EndToEnd {
  double max_relative_diff;
  double min_top1_agreement;
  int greedy_prefix;
};

const std::map<std::string, EndToEnd>& end_to_end() {
  static const std::map<std::string, EndToEnd> m = {
      {"none", {1e-4, 1.0, 16}}, {"int8", {0.05, 0.9, 16}}, {"llm_int8", {0.05, 0.9, 16}},
      {"q8_0", {0.05, 0.9, 2}},  {"q4_0", {0.35, 0.6, 0}},  {"nf4", {0.35, 0.7, 0}},
      {"fp4", {0.45, 0.6, 0}},
  };
  return m;
}

std::vector<float> tf_float_logits(const std::string& dir, const std::vector<int32_t>& prompt) {
  auto model = load_model(dir);
  Transformer tf(*model, test::attention("sdpa"));
  KvCache cache = tf.new_cache();
  SequenceStep step{&cache, prompt, 0};
  return tf.forward({&step, 1});
}

void check_fixture_model(const std::string& spec, const EndToEnd& tol, bool is_none) {
  const std::string dir = test::shared_path("fixtures/hf/llama");
  auto model = load_model(dir);
  const test::HfReference ref = test::load_hf_reference(dir);
  const int64_t held = model->weights.bytes_held();
  const auto report = quantize_model_weights(model->weights, *quant().create(spec));
  const int64_t linear = 7 * model->config.num_layers;
  EXPECT_EQ(report.matrices_quantized + report.matrices_kept, linear);
  if (is_none) {
    EXPECT_EQ(model->weights.bytes_held(), held);
  } else {
    EXPECT_EQ(report.matrices_quantized, linear);
    EXPECT_LT(model->weights.bytes_held(), held);
    EXPECT_TRUE(model->weights.layers[0].wq.quant);
    EXPECT_FALSE(model->weights.embed.quant);
    EXPECT_FALSE(model->weights.lm_head.quant);
  }
  Transformer tf(*model, test::attention("sdpa"));
  const std::vector<int32_t> prompt(ref.input_ids.begin(), ref.input_ids.begin() + ref.prompt_len);
  KvCache cache = tf.new_cache();
  SequenceStep step{&cache, prompt, 0};
  const auto logits = tf.forward({&step, 1});
  const auto diff = test::compare(logits.data(), ref.logits.data(), ref.prompt_len * ref.vocab);
  int agree = 0;
  for (int64_t t = 0; t < ref.prompt_len; ++t)
    agree += argmax(logits.data() + t * ref.vocab, ref.vocab) == argmax(ref.logits.data() + t * ref.vocab, ref.vocab);
  const double agreement = double(agree) / double(ref.prompt_len);
  std::printf("%s: max relative logit diff %.4f, top-1 agreement %.3f\n", spec.c_str(), diff.relative(), agreement);
  EXPECT_LE(diff.relative(), tol.max_relative_diff);
  EXPECT_GE(agreement, tol.min_top1_agreement);
  if (is_none) {
    EXPECT_EQ(logits, tf_float_logits(dir, prompt)) << "none must be bit-identical to the float model";
  }
  const int k = tol.greedy_prefix;
  if (k > 0) {
    GenerateOptions opt;
    opt.max_new_tokens = 16;
    const auto results = generate_greedy(tf, {prompt}, opt);
    const std::vector<int32_t> got(results[0].tokens.begin(), results[0].tokens.begin() + k);
    const std::vector<int32_t> want(ref.generated.begin() + ref.prompt_len, ref.generated.begin() + ref.prompt_len + k);
    EXPECT_EQ(got, want);
  }
}

TEST_P(QuantFormat, FixtureModelStaysCloseToFloat) {
  const auto it = end_to_end().find(GetParam());
  ASSERT_NE(it, end_to_end().end()) << "format '" << GetParam() << "' has no end-to-end tolerance in this test: add one";
  check_fixture_model(GetParam(), it->second, is_none());
}

// lm_head=true (every format but none): the classifier is quantized exactly as the format quantizes
// that matrix on its own; with tied embeddings the lookup keeps the float32 embedding and a separate
// quantized classifier is held; untied, the float32 classifier is released. The logits are bit-identical
// to those of the default quantization with that separately quantized classifier put in by hand.
TEST_P(QuantFormat, LmHeadParameterQuantizesTheClassifier) {
  if (is_none()) {
    EXPECT_NE(test::error_of([] { quant().create("none:lm_head=true"); }).find("lm_head"), std::string::npos);
    return;
  }
  for (const std::string fixture : {"fixtures/hf/llama_tied", "fixtures/hf/llama"}) {
    auto base = load_model(test::shared_path(fixture));
    auto model = load_model(test::shared_path(fixture));
    const bool tied = model->weights.lm_head.data == model->weights.embed.data;
    EXPECT_EQ(tied, fixture.ends_with("_tied"));
    const WeightMatrix classifier = model->weights.lm_head;
    const auto alone = quant().create(GetParam())->quantize(classifier);
    const float* embed = model->weights.embed.data;
    const auto base_report = quantize_model_weights(base->weights, *quant().create(GetParam()));
    const auto report = quantize_model_weights(model->weights, *quant().create(GetParam() + ":lm_head=true"));
    EXPECT_EQ(report.matrices_quantized, 7 * model->config.num_layers + 1) << fixture;
    const WeightMatrix& lm = model->weights.lm_head;
    ASSERT_TRUE(lm.quant) << fixture;
    EXPECT_FALSE(base->weights.lm_head.quant);
    EXPECT_FALSE(model->weights.embed.quant);
    EXPECT_EQ(model->weights.embed.data, embed) << "the embedding lookup stays float32";
    std::vector<PackedBuffer> got = lm.quant->buffers(), want = alone->buffers();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(bytes_of(got[i]), bytes_of(want[i])) << got[i].name;
    const int64_t float_classifier = classifier.rows * classifier.cols * 4;
    EXPECT_EQ(model->weights.bytes_held(),
              base->weights.bytes_held() + lm.quant->bytes() - (tied ? 0 : float_classifier)) << fixture;
    EXPECT_EQ(model->weights.bytes_read_per_token(),
              base->weights.bytes_read_per_token() + lm.quant->bytes() - float_classifier) << fixture;
    if (tied) { EXPECT_EQ(report.float_bytes_released, base_report.float_bytes_released) << "the embedding is kept"; }
    base->weights.lm_head.quant = alone;
    base->weights.lm_head.data = nullptr;
    auto run = [](const Model& m) {
      Transformer tf(m, test::attention("sdpa"));
      KvCache cache = tf.new_cache();
      const std::vector<int32_t> prompt = {1, 5, 9, 2};
      SequenceStep step{&cache, prompt, 0};
      return tf.forward({&step, 1});
    };
    const auto logits = run(*model);
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
    EXPECT_EQ(logits, run(*base)) << fixture;
  }
}

TEST(QuantModel, UnsupportedShapeNamesTheMatrixAndLeavesWeightsUnchanged) {
  auto model = load_model(test::shared_path("fixtures/hf/stories260k_hf"));  // intermediate_size 172
  const int64_t held = model->weights.bytes_held();
  const std::string msg = test::error_of([&] { quantize_model_weights(model->weights, *quant().create("q4_0")); });
  EXPECT_NE(msg.find("layer 0 mlp.down_proj"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64, 172]"), std::string::npos) << msg;
  EXPECT_EQ(model->weights.bytes_held(), held);
  EXPECT_FALSE(model->weights.layers[0].wq.quant);
}


// ---- activations=q8_0: the integer kernel for int8, nf4 and fp4 (an explicit, approximate choice) ----

class Q8ActivationSpec : public ::testing::TestWithParam<std::string> {
 protected:
  std::string format() const { return GetParam().substr(0, GetParam().find(':')); }
};

TEST_P(Q8ActivationSpec, MatmulWithinActivationAndTableBound) { check_matmul(GetParam(), format()); }

TEST_P(Q8ActivationSpec, IsTheIntegerPathAndDefaultStaysFloat) {
  const auto w = random_matrix(37, 256, 8);
  const auto fast = quantize(GetParam(), w, 37, 256);
  // activations=q8_0 comes last in every spec of this suite.
  const size_t p = GetParam().find("activations=q8_0");
  const auto base = quantize(GetParam().substr(0, p) + "activations=float32", w, 37, 256);
  const auto plain = quantize(GetParam().substr(0, p - 1), w, 37, 256);
  EXPECT_NE(fast->format().find("activations=q8_0"), std::string::npos) << fast->format();
  EXPECT_EQ(base->format().find("activations"), std::string::npos) << base->format();
  for (size_t i = 0; i < fast->buffers().size(); ++i)  // the packed weights do not depend on the kernel
    EXPECT_EQ(bytes_of(fast->buffers()[i]), bytes_of(base->buffers()[i])) << fast->buffers()[i].name;
  std::vector<float> x(256), y_fast(37), y_base(37), y_plain(37);
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  fast->matmul(x.data(), 1, y_fast.data());
  base->matmul(x.data(), 1, y_base.data());
  plain->matmul(x.data(), 1, y_plain.data());
  EXPECT_EQ(y_base, y_plain) << "activations=float32 is the default";
  EXPECT_NE(y_fast, y_base) << "activations=q8_0 must run the integer kernel";
}

TEST_P(Q8ActivationSpec, FixtureModelStaysCloseToFloat) {
  // The float-activation tolerances of the format (q8_0's greedy prefix for int8, whose near-tie at
  // the third greedy token q8_0 activations swap as well).
  // Only the default blocksize, for which those tolerances were set.
  if (GetParam() != format() + ":activations=q8_0") GTEST_SKIP() << "end-to-end tolerances are for the default parameters";
  const std::map<std::string, EndToEnd> m = {{"int8", {0.05, 0.9, 2}}, {"nf4", {0.35, 0.7, 0}}, {"fp4", {0.45, 0.6, 0}}};
  check_fixture_model(GetParam(), m.at(format()), false);
}

// The AVX-VNNI kernel (where the CPU has it) and the AVX2 one give bit-identical results, for every
// format running the integer kernel; check_matmul above ran whichever the CPU selects.
TEST_P(Q8ActivationSpec, AvxVnniAndAvx2KernelsAgree) {
  const bool had = quant::q8_avx_vnni();
  quant::set_q8_avx_vnni(true);
  if (!quant::q8_avx_vnni()) GTEST_SKIP() << "no AVX-VNNI on this CPU";
  for (const std::string& spec : {GetParam(), std::string("q4_0"), std::string("q8_0")}) {
    const auto w = random_matrix(40, 256, 10);
    const auto q = quantize(spec, w, 40, 256);
    for (int64_t n : {1, 2, 3, 5}) {
      std::vector<float> x(size_t(n * 256)), y_vnni(size_t(n * 40)), y_avx2(size_t(n * 40));
      std::mt19937 rng(11);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& v : x) v = normal(rng);
      quant::set_q8_avx_vnni(true);
      q->matmul(x.data(), n, y_vnni.data());
      quant::set_q8_avx_vnni(false);
      q->matmul(x.data(), n, y_avx2.data());
      EXPECT_EQ(y_vnni, y_avx2) << spec << " n " << n;
    }
  }
  quant::set_q8_avx_vnni(had);
}

INSTANTIATE_TEST_SUITE_P(FastPaths, Q8ActivationSpec,
                         ::testing::Values("int8:activations=q8_0", "nf4:activations=q8_0", "fp4:activations=q8_0",
                                           "nf4:blocksize=32,double_quant=true,activations=q8_0",
                                           "fp4:blocksize=128,activations=q8_0"),
                         [](const auto& info) {
                           std::string name;
                           for (char c : info.param) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

}  // namespace
}  // namespace ctx
