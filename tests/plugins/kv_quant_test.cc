// KV-cache quantization (KIVI, core/kv/kv_quant.h):
//   - round trip: per key channel group and per value channel block, |x - x'| within half a step of
//     the fp16 scale (bound below) against a float64 reference of the block's min/max, for 2, 4 and
//     8 bits; params are fp16(min) rounded down and a scale rounded up that covers [min, max];
//     constant blocks exact; 8-bit blocks far from zero (|min| >> range) within about half a step
//   - the fp16 param rule: tiny ranges take the smallest normal fp16 step 2^-14 (no underflow),
//     out-of-range mins and scales saturate at 65504, a constant block has scale 0
//   - cache: exact bytes held for a known shape counted by hand; the residual window bit-identical;
//     flushes at the right token counts; incremental (decode) and one-shot (prefill) quantization
//     give the same entries; fork keeps them
//   - compaction of a quantized layer (KvCache::compact's rebuild): kept float entries bit-identical,
//     kept values within float rounding of their dequantized rows, keys within half a step of the new
//     groups, the quantized prefix quantized_length(count) in fresh groups, bytes shrinking
//   - model: KIVI 8 bits + l2norm / streaming / h2o stays close to float + the same compressor, keeps
//     the same entries' count, holds fewer bytes than either saving alone, and decodes on
//   - model (HF fixture llama): residual >= sequence length is bit-identical to no quantization;
//     8 bits stays within a stated logit tolerance of float; 4 bits is worse than 8, 2 worse than 4
//   - refusals (paged layout) and bad specs give one clear error
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "core/base/error.h"
#include "core/kv/kv_quant.h"
#include "core/model/kv_cache.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "plugins/register_all.h"
#include "tests/support/attention.h"
#include "tests/support/error_of.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

KvQuantConfig kivi(const std::string& args) { return resolve_kv_quant(builtin_catalog(), "kivi:" + args); }

std::vector<float> normal(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng);
  return x;
}

// The bound for a block whose float64 extremes are lo, hi (kv_quant.h): half a step of the fp16
// scale, which covers [min_h, max] with min_h <= lo less than one fp16 ulp below (2^-10 |lo|, 2^-24
// for subnormals) and is rounded up (at most 2^-10 relative) from at least 2^-14; plus float32
// rounding of (x - min) / scale and min + code * scale (a few ulps of the block's magnitude). A
// constant block: min rounded to nearest (half an ulp).
double bound(double lo, double hi, int bits) {
  const double levels = (1 << bits) - 1, ulp = std::ldexp(std::abs(lo), -10) + std::ldexp(1.0, -24);
  const double rounding = 4e-7 * std::max(std::abs(lo), std::abs(hi));
  if (hi == lo) return ulp / 2 + rounding;
  const double step = std::max((hi - lo + ulp) / levels, 1.0 / 16384) * (1 + 1.0 / 1024);
  return step / 2 + rounding;
}

// kv_quant.h's rule for a block with float32 extremes lo < hi: min_h is fp16 rounded down (below lo
// by less than an ulp), and min_h + L scale_h reaches hi with scale_h at most an fp16 ulp above the
// float step (hi - min_h) / L (or 2^-14).
void expect_covering_params(KvQuantParam p, float lo, float hi, int bits, const std::string& where) {
  const double levels = (1 << bits) - 1, mn = p.min(), sc = p.scale();
  EXPECT_EQ(p.min_h, f32_to_f16_down(lo)) << where;
  EXPECT_LE(mn, lo) << where;
  EXPECT_LT(lo - mn, std::ldexp(std::abs(double(lo)), -10) + std::ldexp(1.0, -24)) << where;
  const double s = std::max((double(hi) - mn) / levels, 1.0 / 16384);
  EXPECT_GE(sc, s * (1 - 1e-6)) << where;  // float32 rounding of the step
  EXPECT_LE(sc, s * (1 + 1.0 / 1024)) << where;
  EXPECT_GE(mn + levels * sc, double(hi) * (1 - 1e-6) - 1e-6) << where << ": the codes reach the block's max";
}

TEST(KvQuant, RowBytesPackCodes) {
  EXPECT_EQ(kv_quant_row_bytes(16, 4), 8);
  EXPECT_EQ(kv_quant_row_bytes(16, 8), 16);
  EXPECT_EQ(kv_quant_row_bytes(20, 2), 5);
  EXPECT_EQ(kv_quant_row_bytes(3, 4), 2);
}

TEST(KvQuant, KeysPerChannelWithinHalfScale) {
  const int64_t T = 32, D = 24;
  std::vector<float> k = normal(T * D, 7);
  for (int64_t t = 0; t < T; ++t) k[size_t(t * D + 5)] *= 40;  // an outlier channel, as KIVI observes in keys
  for (int64_t t = 0; t < T; ++t) k[size_t(t * D + 9)] = -2.5f;  // a constant channel
  for (int bits : {2, 4, 8}) {
    std::vector<uint8_t> codes(size_t(T * kv_quant_row_bytes(D, bits)));
    std::vector<KvQuantParam> params(static_cast<size_t>(D));
    quantize_key_block(k.data(), D, T, D, bits, codes.data(), params.data());
    std::vector<float> back(size_t(T * D));
    dequantize_key_block(codes.data(), params.data(), T, D, bits, back.data(), D);
    for (int64_t d = 0; d < D; ++d) {
      double lo = k[size_t(d)], hi = lo;
      for (int64_t t = 0; t < T; ++t) lo = std::min(lo, double(k[size_t(t * D + d)])), hi = std::max(hi, double(k[size_t(t * D + d)]));
      if (hi > lo)
        expect_covering_params(params[size_t(d)], float(lo), float(hi), bits,
                               "bits " + std::to_string(bits) + " channel " + std::to_string(d));
      for (int64_t t = 0; t < T; ++t)
        ASSERT_LE(std::abs(double(back[size_t(t * D + d)]) - double(k[size_t(t * D + d)])), bound(lo, hi, bits))
            << "bits " << bits << " token " << t << " channel " << d;
    }
    for (int64_t t = 0; t < T; ++t) EXPECT_EQ(back[size_t(t * D + 9)], -2.5f) << "a constant channel is exact";
  }
}

TEST(KvQuant, ValuesPerTokenWithinHalfScaleIncludingAShortLastBlock) {
  const int64_t D = 20, G = 8;  // blocks of channels [0,8) [8,16) [16,20)
  const std::vector<float> v = normal(D, 11, 3.0f);
  for (int bits : {2, 4, 8}) {
    std::vector<uint8_t> codes(size_t(kv_quant_row_bytes(D, bits)));
    std::vector<KvQuantParam> params(3);
    quantize_value_row(v.data(), D, G, bits, codes.data(), params.data());
    std::vector<float> back(static_cast<size_t>(D));
    dequantize_value_row(codes.data(), params.data(), D, G, bits, back.data());
    for (int64_t b = 0; b < 3; ++b) {
      const auto [lo, hi] = std::minmax_element(v.begin() + b * G, v.begin() + std::min(D, (b + 1) * G));
      for (int64_t c = b * G; c < std::min(D, (b + 1) * G); ++c)
        EXPECT_LE(std::abs(double(back[size_t(c)]) - double(v[size_t(c)])), bound(*lo, *hi, bits))
            << "bits " << bits << " channel " << c;
    }
  }
}

// 8 bits where |min| is large against the block's range (KIVI's outlier key channels): fp16 min and
// scale rounded to nearest leave up to 2^-11 (|min| + range) of the block outside the codes, which
// clamp there (measured with that rule: errors of 51 steps for [100.01, 100.06], 4 for [20.3, 20.5]);
// min rounded down with the scale taken from it and rounded up, the error stays within half a step,
// the step widened by less than one fp16 ulp of min / 255.
TEST(KvQuant, EightBitBlocksFarFromZeroStayWithinHalfAStep) {
  const int64_t T = 16;
  for (const auto& [lo, hi] : {std::pair{100.01f, 100.06f}, std::pair{20.3f, 20.5f}, std::pair{-20.51f, -20.3f}}) {
    std::vector<float> k(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) k[size_t(t)] = t + 1 == T ? hi : lo + (hi - lo) * float(t) / float(T - 1);
    std::vector<uint8_t> codes(size_t(T * kv_quant_row_bytes(1, 8)));
    KvQuantParam p;
    quantize_key_block(k.data(), 1, T, 1, 8, codes.data(), &p);
    const std::string where = "block [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    expect_covering_params(p, lo, hi, 8, where);
    std::vector<float> back(static_cast<size_t>(T));
    dequantize_key_block(codes.data(), &p, T, 1, 8, back.data(), 1);
    const double step = (double(hi) - double(lo)) / 255;
    for (int64_t t = 0; t < T; ++t) {
      const double err = std::abs(double(back[size_t(t)]) - double(k[size_t(t)]));
      EXPECT_LE(err, bound(lo, hi, 8)) << where << " token " << t;
      EXPECT_LE(err, 0.6 * step) << where << " token " << t;
    }
  }
}

// kv_quant.h's fp16 rule at its edges, and the round trip of such blocks.
TEST(KvQuant, Fp16ParamsNeverUnderflowAndSaturateAtTheFp16Range) {
  const uint16_t smallest_normal = 0x0400, largest = 0x7bff;  // 2^-14, 65504
  // A range whose step (1e-6 / 15) is below 2^-14 takes the step 2^-14, not a subnormal or 0.
  KvQuantParam p = kv_quant_fit(1.0f, 1.000001f, 4);
  EXPECT_EQ(p.scale_h, smallest_normal);
  EXPECT_EQ(p.min_h, f32_to_f16(1.0f));
  p = kv_quant_fit(0.0f, 1e-5f, 8);
  EXPECT_EQ(p.scale_h, smallest_normal);
  EXPECT_EQ(p.min(), 0.0f);
  // A step at the edge stays itself: 2^-14 exactly, and 2^-13.
  EXPECT_EQ(kv_quant_fit(0.0f, 15.0f / 16384, 4).scale_h, smallest_normal);
  EXPECT_EQ(kv_quant_fit(0.0f, 30.0f / 16384, 4).scale(), 1.0f / 8192);
  // A constant block: scale 0, min its value in fp16.
  p = kv_quant_fit(0.1f, 0.1f, 4);
  EXPECT_EQ(p.scale_h, 0);
  EXPECT_EQ(p.min_h, f32_to_f16(0.1f));
  // Saturation: mins beyond +-65504 and steps beyond 65504 stay finite at the fp16 extremes.
  p = kv_quant_fit(-1e6f, 1e6f, 8);
  EXPECT_EQ(p.min_h, uint16_t(0x8000 | largest));
  EXPECT_EQ(p.scale_h, f32_to_f16_up((1e6f + 65504.f) / 255));  // from the saturated min, rounded up
  EXPECT_EQ(kv_quant_fit(0.0f, 1e7f, 2).scale_h, largest);
  EXPECT_EQ(kv_quant_fit(1e5f, 1e5f, 4).min_h, largest);
  // Round trip of a tiny-range value block: codes against 2^-14 steps, within the bound.
  const int64_t D = 8;
  std::vector<float> v(static_cast<size_t>(D));
  for (int64_t c = 0; c < D; ++c) v[size_t(c)] = 0.5f + 1e-7f * float(c);
  for (int bits : {2, 4, 8}) {
    std::vector<uint8_t> codes(size_t(kv_quant_row_bytes(D, bits)));
    KvQuantParam q;
    quantize_value_row(v.data(), D, D, bits, codes.data(), &q);
    EXPECT_EQ(q.scale_h, smallest_normal) << bits;
    std::vector<float> back(static_cast<size_t>(D));
    dequantize_value_row(codes.data(), &q, D, D, bits, back.data());
    for (int64_t c = 0; c < D; ++c) {
      EXPECT_LE(std::abs(double(back[size_t(c)]) - double(v[size_t(c)])), bound(v[0], v[size_t(D - 1)], bits)) << bits;
      EXPECT_LE(std::abs(double(back[size_t(c)]) - double(v[size_t(c)])), 1.0 / 32768 + 1e-6) << bits;
    }
  }
}

ModelConfig tiny_config() {
  ModelConfig c;
  c.num_layers = 2, c.num_heads = 4, c.num_kv_heads = 2, c.head_dim = 16;
  c.layer_window.assign(2, 0);
  return c;
}

// Writes rows [from, to) of `src` ([layer][head][T][D]) into the cache, as the Transformer does.
void write_rows(KvCache& cache, const ModelConfig& c, const std::vector<float>& src, int64_t T, int64_t from, int64_t to) {
  cache.reserve(to);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    for (int64_t h = 0; h < c.num_kv_heads; ++h)
      for (int64_t t = from; t < to; ++t) {
        const float* row = src.data() + ((l * c.num_kv_heads + h) * T + t) * c.head_dim;
        std::copy(row, row + c.head_dim, cache.key_slot(l, h, t));
        std::transform(row, row + c.head_dim, cache.value_slot(l, h, t), [](float x) { return -x; });
      }
    cache.append(l, to - from);
    cache.flush(l);
  }
  cache.advance(to - from);
}

TEST(KvQuant, BytesHeldForAKnownShapeAndTheResidualWindowIsExact) {
  const ModelConfig c = tiny_config();
  const int64_t T = 1000;
  const std::vector<float> src = normal(c.num_layers * c.num_kv_heads * T * c.head_dim, 3);
  KvCache cache(c, T);
  cache.set_quantization(kivi("bits=4,group=32,residual=128"));
  write_rows(cache, c, src, T, 0, T);  // one prefill of 1000 tokens, then the flush
  // Quantized: 32 * floor((1000 - 128) / 32) = 32 * 27 = 864 entries; float: the last 136.
  for (int64_t l = 0; l < c.num_layers; ++l) EXPECT_EQ(cache.quantized_length(l), 864);
  // Per layer and KV head, by hand (head_dim 16, 4 bits: 8 bytes a row; params are 2 fp16, 4 bytes):
  //   key codes 864 * 8 = 6912, value codes 6912, key params 27 groups * 16 channels * 4 = 1728,
  //   value params 864 tokens * 1 block * 4 = 3456, float K+V 136 * 16 * 4 * 2 = 17408  -> 36416
  EXPECT_EQ(cache.bytes_used(), 36416 * 2 * 2);
  // Held: the float storage shrinks to residual + group = 160 entries (20480 bytes a head); the
  // codes and params were allocated once, exactly.
  EXPECT_EQ(cache.bytes_reserved(), (36416 - 17408 + 20480) * 2 * 2);
  EXPECT_LT(cache.bytes_reserved() * 2, T * 16 * 4 * 2 * 2 * 2) << "less than half of the float cache";

  std::vector<float> scratch;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const KvView v = cache.view(l, scratch);
    ASSERT_EQ(v.length, T);
    for (int64_t h = 0; h < c.num_kv_heads; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const float* row = src.data() + ((l * c.num_kv_heads + h) * T + t) * c.head_dim;
        for (int64_t d = 0; d < c.head_dim; ++d) {
          if (t >= 864) {  // the residual window: bit-identical
            ASSERT_EQ(v.key(h, t)[d], row[d]) << l << " " << h << " " << t;
            ASSERT_EQ(v.value(h, t)[d], -row[d]);
          } else {  // a loose bound (4 bits over a normal sample: (max - min) / 15 / 2 < 1)
            ASSERT_LE(std::abs(v.key(h, t)[d] - row[d]), 1.0f);
            ASSERT_LE(std::abs(v.value(h, t)[d] + row[d]), 1.0f);
          }
        }
      }
  }
  EXPECT_DEATH(cache.view(0), "holds quantized entries");
}

TEST(KvQuant, FlushesAtTheRightTokenCountsAndMatchesOneShot) {
  const ModelConfig c = tiny_config();
  const int64_t T = 40;
  const std::vector<float> src = normal(c.num_layers * c.num_kv_heads * T * c.head_dim, 5);
  const KvQuantConfig q = kivi("bits=8,group=4,residual=6");
  KvCache step(c), once(c, T);
  step.set_quantization(q);
  once.set_quantization(q);
  // Quantized entries after T tokens: 4 * floor(max(0, T - 6) / 4); the float part stays within
  // [6, 10) tokens and its storage within residual + group = 10 entries.
  const std::vector<std::pair<int64_t, int64_t>> expected = {{1, 0}, {6, 0}, {9, 0}, {10, 4}, {13, 4},
                                                             {14, 8}, {17, 8}, {18, 12}, {40, 32}};
  size_t next = 0;
  for (int64_t t = 0; t < T; ++t) {
    write_rows(step, c, src, T, t, t + 1);
    if (next < expected.size() && expected[next].first == t + 1) {
      EXPECT_EQ(step.quantized_length(0), expected[next].second) << "after " << t + 1 << " tokens";
      EXPECT_EQ(step.quantized_length(1), expected[next].second) << "after " << t + 1 << " tokens";
      ++next;
    }
    if (t + 1 >= 10) {
      EXPECT_EQ(step.capacity(0) - step.quantized_length(0), 10) << "float entries held";
    }
  }
  EXPECT_EQ(next, expected.size());
  write_rows(once, c, src, T, 0, T);
  EXPECT_EQ(once.quantized_length(0), 32);
  EXPECT_EQ(step.bytes_used(), once.bytes_used());
  std::vector<float> a, b;
  const KvCache forked = step.fork();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const KvView vs = step.view(l, a), vo = once.view(l, b);
    std::vector<float> f;
    const KvView vf = forked.view(l, f);
    for (int64_t h = 0; h < c.num_kv_heads; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < c.head_dim; ++d) {
          ASSERT_EQ(vs.key(h, t)[d], vo.key(h, t)[d]) << "groups sit at the same positions either way";
          ASSERT_EQ(vs.value(h, t)[d], vo.value(h, t)[d]);
          ASSERT_EQ(vf.key(h, t)[d], vs.key(h, t)[d]);
        }
  }
}

// Compaction of a quantized layer: T entries (group 4, residual 6: 32 quantized, 8 float) keep every
// other entry per head (head 1 the odd ones) -> 20 entries, of which quantized_length(20) = 12 are
// quantized afresh.
TEST(KvQuant, CompactionRebuildsTheQuantizedPrefixFromTheKeptEntries) {
  const ModelConfig c = tiny_config();
  const int64_t T = 40, D = c.head_dim, H = c.num_kv_heads;
  const std::vector<float> src = normal(c.num_layers * H * T * D, 21);
  const KvQuantConfig q = kivi("bits=8,group=4,residual=6");
  KvCache cache(c, T);
  cache.set_quantization(q);
  write_rows(cache, c, src, T, 0, T);
  ASSERT_EQ(cache.quantized_length(0), 32);
  std::vector<float> before_buf;
  const KvView before_view = cache.view(0, before_buf);
  const std::vector<float> before(before_buf.begin(), before_buf.end());  // [K heads][V heads] dequantized
  const auto before_k = [&](int64_t h, int64_t t) { return before.data() + (h * T + t) * D; };
  const auto before_v = [&](int64_t h, int64_t t) { return before.data() + (H * T + h * T + t) * D; };
  ASSERT_EQ(before_view.length, T);
  const int64_t count = 20;
  std::vector<int64_t> keep;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < count; ++i) keep.push_back(2 * i + h);
  const int64_t used0 = cache.bytes_used(), held0 = cache.bytes_reserved();
  cache.compact(0, count, keep, 0);
  EXPECT_EQ(cache.length(0), count);
  EXPECT_EQ(cache.quantized_length(0), q.quantized_length(count));
  EXPECT_EQ(cache.quantized_length(0), 12);
  EXPECT_EQ(cache.quantized_length(1), 32) << "the other layer is untouched";
  EXPECT_LT(cache.bytes_used(), used0);
  EXPECT_LT(cache.bytes_reserved(), held0);
  std::vector<float> after_buf;
  const KvView after = cache.view(0, after_buf);
  ASSERT_EQ(after.length, count);
  for (int64_t h = 0; h < H; ++h) {
    // Keys: each new group of 4 kept entries per channel within half its own step of the values it
    // was quantized from (the dequantized originals, or the float rows for entries that were float).
    for (int64_t g = 0; g < 3; ++g)
      for (int64_t d = 0; d < D; ++d) {
        double lo = 1e30, hi = -1e30;
        for (int64_t i = g * 4; i < g * 4 + 4; ++i) {
          const double x = before_k(h, keep[size_t(h * count + i)])[d];
          lo = std::min(lo, x), hi = std::max(hi, x);
        }
        for (int64_t i = g * 4; i < g * 4 + 4; ++i)
          ASSERT_LE(std::abs(double(after.key(h, i)[d]) - double(before_k(h, keep[size_t(h * count + i)])[d])),
                    bound(lo, hi, 8))
              << "head " << h << " entry " << i << " channel " << d;
      }
    for (int64_t i = 0; i < count; ++i) {
      const int64_t j = keep[size_t(h * count + i)];
      for (int64_t d = 0; d < D; ++d) {
        if (i >= 12) {  // float after the rebuild: bit-identical to the entry before (float or dequantized)
          ASSERT_EQ(after.key(h, i)[d], before_k(h, j)[d]) << h << " " << i;
          ASSERT_EQ(after.value(h, i)[d], before_v(h, j)[d]) << h << " " << i;
        } else {  // values re-quantized from their own dequantized row: float rounding only
          ASSERT_NEAR(after.value(h, i)[d], before_v(h, j)[d], 1e-6 * (1 + std::abs(before_v(h, j)[d])))
              << h << " " << i << " " << d;
        }
      }
    }
  }
  // Decoding goes on: a new entry lands after the kept ones and flushes by the same rule.
  cache.reserve(T + 4);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t len = cache.length(l);
    for (int64_t hh = 0; hh < H; ++hh)
      for (int64_t t = 0; t < 4; ++t) {
        std::copy(src.begin() + t * D, src.begin() + (t + 1) * D, cache.key_slot(l, hh, len + t));
        std::copy(src.begin() + t * D, src.begin() + (t + 1) * D, cache.value_slot(l, hh, len + t));
      }
    cache.append(l, 4);
    cache.flush(l);
  }
  cache.advance(4);
  EXPECT_EQ(cache.length(0), count + 4);
  EXPECT_EQ(cache.length(1), T + 4);
  EXPECT_EQ(cache.quantized_length(0), q.quantized_length(count + 4));
}

// A paged cache with KIVI against a contiguous one fed the same rows (prefill of 37, decode steps, a
// compaction of layer 0, more steps, a fork): every layer's entries as float bit for bit, the same
// quantized lengths; the blocks below every layer's quantized prefix go back to the pool
// (kReleasedBlock in the table) and are taken again when a rebuilt layer writes there; clear()
// returns every block.
TEST(KvQuant, PagedCacheHoldsTheContiguousEntriesAndReleasesQuantizedBlocks) {
  const ModelConfig c = tiny_config();
  const int64_t T = 60, D = c.head_dim, H = c.num_kv_heads;
  const std::vector<float> src = normal(c.num_layers * H * T * D, 31);
  const KvQuantConfig q = kivi("bits=4,group=4,residual=6");
  auto pool = std::make_shared<BlockPool>(c, 4);
  KvCache paged(c, pool), flat(c, T);
  paged.set_quantization(q), flat.set_quantization(q);
  const auto same = [&](const KvCache& a, const KvCache& b, const char* when) {
    std::vector<float> sa, sb;
    for (int64_t l = 0; l < c.num_layers; ++l) {
      ASSERT_EQ(a.quantized_length(l), b.quantized_length(l)) << when << " layer " << l;
      const KvView va = a.view(l, sa), vb = b.view(l, sb);
      ASSERT_EQ(va.length, vb.length) << when;
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < va.length; ++t)
          for (int64_t d = 0; d < D; ++d) {
            ASSERT_EQ(va.key(h, t)[d], vb.key(h, t)[d]) << when << " layer " << l << " head " << h << " entry " << t;
            ASSERT_EQ(va.value(h, t)[d], vb.value(h, t)[d]) << when << " layer " << l << " head " << h << " entry " << t;
          }
    }
  };
  const auto released = [](const KvCache& k) {
    return std::count(k.block_table().begin(), k.block_table().end(), KvCache::kReleasedBlock);
  };
  write_rows(paged, c, src, T, 0, 37), write_rows(flat, c, src, T, 0, 37);
  same(paged, flat, "after the prefill");
  ASSERT_EQ(paged.quantized_length(0), 28);
  EXPECT_EQ(released(paged), 7) << "blocks 0 .. 6 hold quantized positions 0 .. 27 only";
  EXPECT_EQ(pool->blocks_in_use(), 10 - 7);
  for (int64_t t = 37; t < 45; ++t) write_rows(paged, c, src, T, t, t + 1), write_rows(flat, c, src, T, t, t + 1);
  same(paged, flat, "after decode steps");
  // Layer 0 keeps every other entry (head 1 the odd ones): its codes are rebuilt into the blocks,
  // which takes released blocks again; layer 1 still holds its codes.
  const int64_t count = 22;
  std::vector<int64_t> keep;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < count; ++i) keep.push_back(2 * i + h);
  paged.compact(0, count, keep), flat.compact(0, count, keep);
  same(paged, flat, "after compacting layer 0");
  EXPECT_EQ(paged.quantized_length(0), q.quantized_length(count));
  // Decode steps after the compaction: row t of each layer lands after that layer's entries.
  const auto step = [&](KvCache& k, int64_t t) {
    k.reserve(k.position() + 1);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const int64_t len = k.length(l);
      for (int64_t h = 0; h < H; ++h) {
        const float* row = src.data() + ((l * H + h) * T + t) * D;
        std::copy(row, row + D, k.key_slot(l, h, len));
        std::transform(row, row + D, k.value_slot(l, h, len), [](float x) { return -x; });
      }
      k.append(l, 1);
      k.flush(l);
    }
    k.advance(1);
  };
  for (int64_t t = 45; t < T; ++t) step(paged, t), step(flat, t);
  same(paged, flat, "after more decode steps");
  const KvCache child = paged.fork();
  same(child, flat, "a fork");
  EXPECT_LT(paged.bytes_reserved(), c.num_layers * 2 * H * T * D * 4) << "less than the float entries";
  paged.clear();
  EXPECT_EQ(released(paged), 0);
  EXPECT_EQ(pool->blocks_in_use(), int64_t(child.block_table().size()) - released(child)) << "the fork's blocks only";
}

// Teacher-forced logits of the HF llama fixture over `tokens`: `context` prefilled, then one token
// a step; rows of every position.
std::vector<float> run(const Model& m, const std::string& kv_quant, const std::vector<int32_t>& tokens, int64_t context) {
  Transformer tf(m, test::attention("sdpa"));
  tf.set_kv_quantization(resolve_kv_quant(builtin_catalog(), kv_quant));
  KvCache cache = tf.new_cache();
  SequenceStep pre{&cache, std::span<const int32_t>(tokens.data(), size_t(context)), 0};
  std::vector<float> out = tf.forward({&pre, 1});
  for (size_t t = size_t(context); t < tokens.size(); ++t) {
    SequenceStep s{&cache, std::span<const int32_t>(&tokens[t], 1), -1};
    const auto l = tf.forward({&s, 1});
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

struct Drift {
  double max_rel = 0;  // max |diff| / max |logit|
  double kl = 0;       // mean KL(float || quantized), nats
};

Drift drift(const std::vector<float>& ref, const std::vector<float>& test, int64_t vocab) {
  Drift d;
  double max_ref = 0, max_diff = 0;
  const int64_t rows = int64_t(ref.size()) / vocab;
  for (int64_t r = 0; r < rows; ++r) {
    const float *p = ref.data() + r * vocab, *q = test.data() + r * vocab;
    const double mp = *std::max_element(p, p + vocab), mq = *std::max_element(q, q + vocab);
    double zp = 0, zq = 0;
    for (int64_t i = 0; i < vocab; ++i) zp += std::exp(p[i] - mp), zq += std::exp(q[i] - mq);
    for (int64_t i = 0; i < vocab; ++i) {
      const double lp = p[i] - mp - std::log(zp), lq = q[i] - mq - std::log(zq);
      d.kl += std::exp(lp) * (lp - lq);
      max_ref = std::max(max_ref, std::abs(double(p[i])));
      max_diff = std::max(max_diff, std::abs(double(p[i]) - double(q[i])));
    }
  }
  d.kl /= double(rows);
  d.max_rel = max_diff / max_ref;
  return d;
}

class KvQuantModel : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(test::shared_path("fixtures/hf/llama"));
    std::mt19937 rng(9);
    for (int i = 0; i < 96; ++i) tokens_.push_back(int32_t(3 + rng() % 509));
    ref_ = run(*model_, "none", tokens_, 40);
  }
  std::unique_ptr<Model> model_;
  std::vector<int32_t> tokens_;
  std::vector<float> ref_;
};

TEST_F(KvQuantModel, ResidualCoveringTheSequenceIsBitIdentical) {
  EXPECT_EQ(run(*model_, "kivi:bits=2,group=8,residual=96", tokens_, 40), ref_);
}

TEST_F(KvQuantModel, EightBitsStayCloseAndFewerBitsDriftFurther) {
  const int64_t V = model_->config.vocab_size;
  // Groups of 8 and a window of 8, so that most of the 96 entries are quantized during decode.
  const Drift d8 = drift(ref_, run(*model_, "kivi:bits=8,group=8,residual=8", tokens_, 40), V);
  const Drift d4 = drift(ref_, run(*model_, "kivi:bits=4,group=8,residual=8", tokens_, 40), V);
  const Drift d2 = drift(ref_, run(*model_, "kivi:bits=2,group=8,residual=8", tokens_, 40), V);
  // Stated tolerance for 8 bits: max |diff| <= 1% of max |logit|.
  EXPECT_LE(d8.max_rel, 1e-2) << "8 bits";
  EXPECT_GT(d8.max_rel, 0.0) << "entries were quantized";
  EXPECT_GT(d4.kl, d8.kl);
  EXPECT_GT(d4.max_rel, d8.max_rel);
  EXPECT_GT(d2.kl, d4.kl);
  std::printf("kl: 8 bits %.3g, 4 bits %.3g, 2 bits %.3g | max rel: %.3g %.3g %.3g\n", d8.kl, d4.kl, d2.kl, d8.max_rel,
              d4.max_rel, d2.max_rel);
}

// KIVI 8 bits composed with compressors that drop entries (prefill-time l2norm and streaming, per-step
// h2o): the logits of the whole run (prefill of 40, then 56 decode steps) against float KV + the same
// compressor, the same entry counts, and the bytes held against each saving alone.
struct RunStats {
  std::vector<float> logits;
  int64_t length = 0, quantized = 0, bytes_used = 0, bytes_reserved = 0;
};

// chunk > 0: the prefill in forwards of `chunk` tokens (each compresses layers that already hold
// quantized entries: the rebuild), last rows only.
RunStats run_compressed(const Model& m, const std::string& kv, const std::string& kv_quant,
                        const std::vector<int32_t>& tokens, int64_t context, int64_t chunk = 0,
                        const std::string& attention = "sdpa") {
  Transformer tf(m, test::attention(attention));
  tf.set_kv_quantization(resolve_kv_quant(builtin_catalog(), kv_quant));
  tf.set_kv_compressor(builtin_catalog().kv.create(kv));
  KvCache cache = tf.new_cache();
  RunStats r;
  for (int64_t at = 0; chunk > 0 && at < context; at += chunk) {
    SequenceStep pre{&cache, std::span<const int32_t>(tokens.data() + at, size_t(std::min(chunk, context - at))), -1};
    const auto l = tf.forward({&pre, 1});
    r.logits.insert(r.logits.end(), l.begin(), l.end());
  }
  if (chunk == 0) {  // one prefill, logits of every row
    SequenceStep pre{&cache, std::span<const int32_t>(tokens.data(), size_t(context)), 0};
    r.logits = tf.forward({&pre, 1});
  }
  for (size_t t = size_t(context); t < tokens.size(); ++t) {
    SequenceStep s{&cache, std::span<const int32_t>(&tokens[t], 1), -1};
    const auto l = tf.forward({&s, 1});
    r.logits.insert(r.logits.end(), l.begin(), l.end());
  }
  r.length = cache.length(0), r.quantized = cache.quantized_length(0);
  r.bytes_used = cache.bytes_used(), r.bytes_reserved = cache.bytes_reserved();
  return r;
}

TEST_F(KvQuantModel, CompressionComposesWithKiviEightBits) {
  const int64_t V = model_->config.vocab_size;
  const std::string kivi8 = "kivi:bits=8,group=8,residual=8";
  for (const std::string kv : {"l2norm:keep_ratio=0.5,prune_after=16,skip_layers=[]",
                               "streaming:n_sink=4,keep_ratio=0.5", "h2o:keep_ratio=0.5"}) {
    const RunStats ref = run_compressed(*model_, kv, "none", tokens_, 40);
    const RunStats both = run_compressed(*model_, kv, kivi8, tokens_, 40);
    const RunStats quant_only = run_compressed(*model_, "none", kivi8, tokens_, 40);
    EXPECT_EQ(both.length, ref.length) << kv << ": the compressor keeps as many entries with KIVI";
    EXPECT_LT(both.length, int64_t(tokens_.size())) << kv;
    EXPECT_EQ(both.quantized, kivi(kivi8.substr(5)).quantized_length(both.length)) << kv;
    EXPECT_GT(both.quantized, 0) << kv;
    EXPECT_LT(both.bytes_used, ref.bytes_used) << kv;
    EXPECT_LT(both.bytes_used, quant_only.bytes_used) << kv;
    EXPECT_LT(both.bytes_reserved, quant_only.bytes_reserved) << kv;
    const Drift d = drift(ref.logits, both.logits, V);
    // Stated tolerance, as for KIVI 8 bits alone: max |diff| <= 1% of max |logit|.
    EXPECT_LE(d.max_rel, 1e-2) << kv;
    EXPECT_GT(d.max_rel, 0.0) << kv;
    std::printf("%s + %s: entries %lld (quantized %lld), bytes used %lld vs float %lld, kivi alone %lld; "
                "max rel %.3g, kl %.3g\n",
                kv.c_str(), kivi8.c_str(), (long long)both.length, (long long)both.quantized,
                (long long)both.bytes_used, (long long)ref.bytes_used, (long long)quant_only.bytes_used, d.max_rel,
                d.kl);
    // The prompt in chunks of 12: every chunk after the first rebuilds layers holding codes.
    const RunStats ref_c = run_compressed(*model_, kv, "none", tokens_, 40, 12);
    const RunStats both_c = run_compressed(*model_, kv, kivi8, tokens_, 40, 12);
    EXPECT_EQ(both_c.length, ref_c.length) << kv << " chunked";
    EXPECT_EQ(both_c.quantized, kivi(kivi8.substr(5)).quantized_length(both_c.length)) << kv << " chunked";
    EXPECT_LT(both_c.bytes_used, ref_c.bytes_used) << kv << " chunked";
    const Drift dc = drift(ref_c.logits, both_c.logits, V);
    EXPECT_LE(dc.max_rel, 1e-2) << kv << " chunked";
    std::printf("  chunks of 12: entries %lld (quantized %lld); max rel %.3g, kl %.3g\n", (long long)both_c.length,
                (long long)both_c.quantized, dc.max_rel, dc.kl);
  }
}

// Paged + KIVI (the model): the paged backend over a paged cache whose quantized prefixes are read
// dequantized, against flash (the same tiled attention) over a contiguous one, with KIVI 8 bits, and
// with l2norm compression in prefill chunks of 12 (layers holding codes rebuilt): the same logits
// bit for bit, entry counts and quantized lengths; the paged cache holds fewer bytes than the same
// run without KIVI.
TEST_F(KvQuantModel, PagedCacheMatchesContiguousWithKivi) {
  const std::string kivi8 = "kivi:bits=8,group=8,residual=8";
  for (const char* kv : {"none", "l2norm:keep_ratio=0.5,prune_after=16,skip_layers=[]"}) {
    for (int64_t chunk : {int64_t(0), int64_t(12)}) {
      const RunStats flat = run_compressed(*model_, kv, kivi8, tokens_, 40, chunk, "flash");
      const RunStats paged = run_compressed(*model_, kv, kivi8, tokens_, 40, chunk, "paged");
      const RunStats paged_float = run_compressed(*model_, kv, "none", tokens_, 40, chunk, "paged");
      EXPECT_EQ(paged.logits, flat.logits) << kv << " chunk " << chunk;
      EXPECT_EQ(paged.length, flat.length) << kv << " chunk " << chunk;
      EXPECT_EQ(paged.quantized, flat.quantized) << kv << " chunk " << chunk;
      EXPECT_GT(paged.quantized, 0) << kv << " chunk " << chunk;
      EXPECT_LT(paged.bytes_reserved, paged_float.bytes_reserved) << kv << " chunk " << chunk;
      std::printf("paged + %s + %s, chunks of %lld: entries %lld (quantized %lld), bytes held %lld vs %lld without KIVI\n",
                  kv, kivi8.c_str(), (long long)chunk, (long long)paged.length, (long long)paged.quantized,
                  (long long)paged.bytes_reserved, (long long)paged_float.bytes_reserved);
    }
  }
}

TEST(KvQuantRefusals, CompressorsCompose) {
  const auto model = load_model(test::shared_path("fixtures/hf/llama"));
  const KvQuantConfig q = kivi("bits=4");
  Transformer tf(*model, test::attention("sdpa"));
  tf.set_kv_compressor(builtin_catalog().kv.create("none"));
  tf.set_kv_quantization(q);
  EXPECT_NO_THROW(tf.set_kv_compressor(builtin_catalog().kv.create("l2norm")));
  tf.set_kv_quantization(KvQuantConfig{});
  tf.set_kv_compressor(builtin_catalog().kv.create("streaming"));
  EXPECT_NO_THROW(tf.set_kv_quantization(q));
}

TEST(KvQuantSpecs, CanonicalFormAndOneClearErrorEach) {
  EXPECT_EQ(kivi("bits=8").spec, "kivi@1{bits=8,group=32,residual=128}");
  EXPECT_FALSE(resolve_kv_quant(builtin_catalog(), "none").enabled());
  const auto err = [](const std::string& spec) { return test::error_of([&] { resolve_kv_quant(builtin_catalog(), spec); }); };
  EXPECT_NE(err("kivi:bits=3").find("bits=3 is not supported (allowed: 2, 4, 8)"), std::string::npos);
  EXPECT_NE(err("kivi:bits=16").find("bits"), std::string::npos);
  EXPECT_NE(err("kivi:group=0").find("group"), std::string::npos);
  EXPECT_NE(err("kivi:window=4").find("window"), std::string::npos);
  EXPECT_NE(err("kiwi").find("unknown kv_quant plugin 'kiwi' (known: none, kivi)"), std::string::npos) << err("kiwi");
  for (const char* s : {"kivi:bits=3", "kivi:bits=16", "kivi:group=0", "kivi:window=4", "kiwi"})
    EXPECT_EQ(err(s).find('\n'), std::string::npos) << s;
}

}  // namespace
}  // namespace ctx
