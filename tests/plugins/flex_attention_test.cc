// `flex`: every named mask and score mod, their compositions, user lambdas through the template API,
// block mask classification and config errors. Each output is compared with a brute-force float64
// reference (attention_problem.h) whose masks and score mods are written out here from their
// definitions, independently of plugins/attention/flex. Tolerance: max |out - ref| <= 2e-5 max |ref|
// (float32 accumulation over up to ~1000 keys gives ~1e-6).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "core/base/error.h"
#include "plugins/attention/flex/flex_attention.h"
#include "plugins/attention/flex/mask_expr.h"
#include "tests/plugins/attention_problem.h"
#include "tests/support/attention.h"

namespace ctx {
namespace {

using test::AttentionProblem;
using test::SeqShape;

constexpr double kTolerance = 2e-5;

// Prefill, chunked prefill (n_new < length), decode (1 and 3 rows: the split-KV path), lengths that
// are not multiples of the blocks, and a single-position sequence.
std::vector<SeqShape> mixed_batch() { return {{257, 257}, {1, 1}, {200, 60}, {700, 1}, {130, 3}, {64, 64}}; }

struct Shape {
  int64_t heads, kv_heads, head_dim;
};
// Head dims 64, 80, 128 and an odd 20 (vector tails); GQA ratios 1, 4 and 8 (MQA-like).
const Shape kShapes[] = {{4, 4, 64}, {8, 2, 80}, {8, 1, 128}, {4, 2, 20}};

AttentionParams params(const Shape& s, int64_t window = 0) {
  return {s.heads, s.kv_heads, s.head_dim, float(1.0 / std::sqrt(double(s.head_dim))), window};
}

// Reference mods, from the definitions in the issue / FlexAttention / HF.
auto causal() {
  return [](int64_t, int64_t, int64_t q, int64_t k) { return k <= q; };
}
auto sliding(int64_t w) {
  return [w](int64_t, int64_t, int64_t q, int64_t k) { return k <= q && q - k < w; };
}
auto prefix_lm(int64_t prefix) {
  return [prefix](int64_t, int64_t, int64_t q, int64_t k) { return k <= q || (q < prefix && k < prefix); };
}
// The engine's window: only its lower edge is ANDed into flex masks (bidirectional ones stay so).
auto key_window(int64_t w) {
  return [w](int64_t, int64_t, int64_t q, int64_t k) { return w <= 0 || k > q - w; };
}
auto chunked(int64_t c) {
  return [c](int64_t, int64_t, int64_t q, int64_t k) { return k <= q && q / c == k / c; };
}
auto document(std::vector<int64_t> lengths) {
  std::vector<int64_t> id;  // segment id per position; past the end: the last document
  for (size_t d = 0; d < lengths.size(); ++d) id.insert(id.end(), size_t(lengths[d]), int64_t(d));
  return [id](int64_t, int64_t, int64_t q, int64_t k) {
    const auto seg = [&](int64_t p) { return p < int64_t(id.size()) ? id[size_t(p)] : id.back(); };
    return k <= q && seg(q) == seg(k);
  };
}
template <class A, class B>
auto both(A a, B b) {
  return [a, b](int64_t bi, int64_t h, int64_t q, int64_t k) { return a(bi, h, q, k) && b(bi, h, q, k); };
}
template <class A, class B>
auto either(A a, B b) {
  return [a, b](int64_t bi, int64_t h, int64_t q, int64_t k) { return a(bi, h, q, k) || b(bi, h, q, k); };
}
auto softcap(double cap) {
  return [cap](double s, int64_t, int64_t, int64_t, int64_t) { return cap * std::tanh(s / cap); };
}
// HF transformers' get_slopes (bloom / mpt build_alibi_tensor), transcribed.
std::vector<double> hf_alibi_slopes(int64_t n) {
  const auto slopes_pow2 = [](int64_t m) {
    const double start = std::pow(2.0, -std::pow(2.0, -(std::log2(double(m)) - 3)));
    std::vector<double> r;
    for (int64_t i = 0; i < m; ++i) r.push_back(start * std::pow(start, double(i)));
    return r;
  };
  if (std::bit_floor(uint64_t(n)) == uint64_t(n)) return slopes_pow2(n);
  const int64_t closest = int64_t(std::bit_floor(uint64_t(n)));
  std::vector<double> r = slopes_pow2(closest), extra = slopes_pow2(2 * closest);
  for (int64_t i = 0; i < n - closest; ++i) r.push_back(extra[size_t(2 * i)]);
  return r;
}
auto alibi(int64_t heads) {
  return [slopes = hf_alibi_slopes(heads)](double s, int64_t, int64_t h, int64_t q, int64_t k) {
    return s + slopes[size_t(h)] * double(k - q);
  };
}
template <class A, class B>
auto then(A a, B b) {
  return [a, b](double s, int64_t bi, int64_t h, int64_t q, int64_t k) { return b(a(s, bi, h, q, k), bi, h, q, k); };
}

// Runs `spec` on every shape (and, for each, with the engine's window 0 and 90 ANDed in) against the
// reference mask & score.
template <class Mask, class Score>
void expect_matches(const std::string& spec, const Mask& mask, const Score& score, float q_scale = 1.0f) {
  const auto backend = test::attention(spec);
  uint32_t seed = 1;
  for (const Shape& shape : kShapes)
    for (int64_t window : {0, 90}) {
      SCOPED_TRACE(spec + " heads " + std::to_string(shape.heads) + "/" + std::to_string(shape.kv_heads) + " d " +
                   std::to_string(shape.head_dim) + " engine window " + std::to_string(window));
      AttentionProblem pr(params(shape, window), mixed_batch(), seed++, q_scale);
      pr.run(*backend);
      EXPECT_LE(pr.relative_error(pr.reference(both(mask, key_window(window)), score)), kTolerance);
    }
}

TEST(FlexAttention, DefaultIsCausal) { expect_matches("flex", causal(), test::no_score); }

TEST(FlexAttention, NamedMasks) {
  expect_matches("flex:mask=causal", causal(), test::no_score);
  expect_matches("flex:mask=sliding_window,window=37", sliding(37), test::no_score);
  expect_matches("flex:mask=sliding_window,window=64", sliding(64), test::no_score);
  expect_matches("flex:mask=prefix_lm,prefix=50", prefix_lm(50), test::no_score);
  expect_matches("flex:mask=chunked,chunk=48", chunked(48), test::no_score);
  expect_matches("flex:mask=document,documents=[30,70,5,100]", document({30, 70, 5, 100}), test::no_score);
}

TEST(FlexAttention, Compositions) {
  expect_matches("flex:mask=causal&sliding_window,window=20", sliding(20), test::no_score);
  expect_matches("flex:mask=prefix_lm|causal,prefix=77", prefix_lm(77), test::no_score);
  expect_matches("flex:mask=prefix_lm|chunked,prefix=40,chunk=32", either(prefix_lm(40), chunked(32)), test::no_score);
  expect_matches("flex:mask=document&sliding_window,documents=[60,90],window=25",
                 both(document({60, 90}), sliding(25)), test::no_score);
  expect_matches("flex:mask=(chunked|sliding_window)&document,chunk=100,window=30,documents=[120,200]",
                 both(either(chunked(100), sliding(30)), document({120, 200})), test::no_score);
  expect_matches("flex:mask=chunked|sliding_window&prefix_lm,chunk=16,window=8,prefix=20",
                 either(chunked(16), both(sliding(8), prefix_lm(20))), test::no_score);
}

TEST(FlexAttention, ScoreMods) {
  // Queries scaled so that scores reach a few units and the softcap bites.
  expect_matches("flex:score=softcap,softcap=2", causal(), softcap(2.0), 6.0f);
}

TEST(FlexAttention, ScoreModsPerShape) {
  // ALiBi slopes depend on the head count: check each shape against its own reference, including a
  // head count that is not a power of two (the interpolated slopes).
  const Shape shapes[] = {{8, 2, 64}, {4, 4, 80}, {12, 3, 32}, {6, 6, 20}};
  uint32_t seed = 100;
  for (const Shape& shape : shapes)
    for (const char* score : {"alibi", "softcap+alibi", "alibi+softcap"}) {
      const std::string spec = std::string("flex:mask=sliding_window,window=100,softcap=3,score=") + score;
      SCOPED_TRACE(spec + " heads " + std::to_string(shape.heads));
      const auto backend = test::attention(spec);
      AttentionProblem pr(params(shape), mixed_batch(), seed++, 4.0f);
      pr.run(*backend);
      const std::string s = score;
      const auto ref = s == "alibi"           ? pr.reference(sliding(100), alibi(shape.heads))
                       : s == "softcap+alibi" ? pr.reference(sliding(100), then(softcap(3), alibi(shape.heads)))
                                              : pr.reference(sliding(100), then(alibi(shape.heads), softcap(3)));
      EXPECT_LE(pr.relative_error(ref), kTolerance);
    }
}

TEST(FlexAttention, AlibiSlopesMatchHf) {
  for (int64_t n : {1, 2, 3, 4, 5, 6, 8, 12, 16, 20, 32, 40, 64}) {
    const std::vector<float> ours = flex::alibi_slopes(n);
    const std::vector<double> hf = hf_alibi_slopes(n);
    ASSERT_EQ(ours.size(), hf.size()) << n;
    for (size_t h = 0; h < hf.size(); ++h) EXPECT_NEAR(ours[h], hf[h], 1e-7 * hf[h]) << n << " head " << h;
  }
  // The power-of-two rule of the paper: 2^(-8 (h + 1) / n).
  const std::vector<float> s8 = flex::alibi_slopes(8);
  for (int h = 0; h < 8; ++h) EXPECT_FLOAT_EQ(s8[size_t(h)], float(std::exp2(-8.0 * (h + 1) / 8)));
}

// The GPU kernels' score mod (core/cuda/score_mod.h, as gpu_score_mod() gives it) evaluated on the
// host equals the CPU's mods: ALiBi slopes within an ulp (exp2f vs float(exp2)), softcap and the
// two orders of composition on a grid of scores, heads and positions.
TEST(FlexAttention, GpuScoreModEqualsTheCpuMods) {
  for (int64_t n : {1, 3, 6, 8, 12, 32, 40})
    for (int64_t h = 0; h < n; ++h)
      EXPECT_NEAR(cuda::ScoreMod::alibi_slope(h, n), flex::alibi_slopes(n)[size_t(h)], 2e-7 * flex::alibi_slopes(n)[size_t(h)])
          << n << " heads, head " << h;
  const int64_t heads = 12;
  const flex::SoftCap cap{3.f};
  const flex::Alibi alibi(heads);
  const auto mod = [](const char* spec) { return test::attention(spec)->gpu_score_mod(); };
  EXPECT_TRUE(mod("flex").empty());
  EXPECT_TRUE(mod("flex:score=none,softcap=3").empty());
  const cuda::ScoreMod c = mod("flex:score=softcap,softcap=3"), a = mod("flex:score=alibi"),
                       ca = mod("flex:score=softcap+alibi,softcap=3"), ac = mod("flex:score=alibi+softcap,softcap=3");
  for (float s : {-40.f, -2.5f, 0.f, 0.7f, 9.f})
    for (int64_t h : {0, 5, 11})
      for (auto [q, k] : {std::pair<int64_t, int64_t>{0, 0}, {100, 3}, {1000, 999}}) {
        const auto near = [&](float got, float want) { EXPECT_NEAR(got, want, 1e-5f * std::max(1.f, std::fabs(want))); };
        near(c.apply(s, h, heads, q, k), cap(s, 0, h, q, k));
        near(a.apply(s, h, heads, q, k), alibi(s, 0, h, q, k));
        near(ca.apply(s, h, heads, q, k), flex::score_then(cap, alibi)(s, 0, h, q, k));
        near(ac.apply(s, h, heads, q, k), flex::score_then(alibi, cap)(s, 0, h, q, k));
      }
}

TEST(FlexAttention, SmallBlocksAndExplicitSplits) {
  // Blocks that do not divide the lengths, and decode split over up to 5 KV runs.
  expect_matches("flex:mask=document|sliding_window,documents=[33,66,99],window=21,block_q=16,block_kv=24,num_splits=5",
                 either(document({33, 66, 99}), sliding(21)), test::no_score);
  expect_matches("flex:mask=prefix_lm,prefix=45,block_q=7,block_kv=5", prefix_lm(45), test::no_score);
}

// The template API with user lambdas (no interval classifier: the block mask is built by evaluating
// the mask on every block), masks that depend on b and h, and rows that see no key.
TEST(FlexAttention, UserLambdas) {
  const auto mask = [](int64_t b, int64_t h, int64_t q, int64_t k) {
    if (q % 50 == 13) return false;  // rows that see nothing: zeros
    if ((b + h) % 2 == 0) return k <= q && (k % 3 != 1 || k + 7 > q);
    return k <= q && q - k < 40;
  };
  const auto score = [](auto s, int64_t b, int64_t h, int64_t q, int64_t k) {
    return s * (1 + 0.25 * double(h % 3)) - 0.01 * double((q - k) % 7) + 0.1 * double(b % 2);
  };
  const Shape shape{8, 2, 48};
  const AttentionParams p = params(shape);
  AttentionProblem pr(p, mixed_batch(), 7);
  const auto ref = pr.reference(mask, score);
  const auto run = [&](const BlockMask* bm, TileOptions opt) {
    for (auto& o : pr.out) std::fill(o.begin(), o.end(), NAN);
    const auto batch = pr.batch();
    flex_attention(p, std::span<const AttentionSequence>(batch), mask, score, bm, opt);
    return pr.relative_error(ref);
  };
  // No block mask: every tile masked per element.
  EXPECT_LE(run(nullptr, {}), kTolerance);
  EXPECT_LE(run(nullptr, {32, 16, 3}), kTolerance);
  // A block mask over batch indices and heads (b = 10 + i in AttentionProblem).
  const int64_t n_batch = 10 + int64_t(pr.shapes.size());
  const BlockMask bm = BlockMask::build(mask, 700, 700, 32, 32, n_batch, shape.heads);
  const BlockMask::Counts c = bm.counts();
  EXPECT_GT(c.empty, 0);
  EXPECT_GT(c.partial, 0);
  EXPECT_LE(run(&bm, {}), kTolerance);
  // Zeros for the rows that see nothing.
  for (size_t si = 0; si < pr.shapes.size(); ++si)
    for (int64_t i = 0; i < pr.shapes[si].n_new; ++i)
      if ((pr.shapes[si].length - pr.shapes[si].n_new + i) % 50 == 13) {
        for (int64_t x = 0; x < shape.heads * shape.head_dim; ++x)
          EXPECT_EQ(pr.out[si][size_t(i * shape.heads * shape.head_dim + x)], 0.0f);
      }

  // Compiled named mods composed in C++, and a lambda mixed in.
  const auto composed = flex::mask_and(flex::Document(std::vector<int64_t>{100, 150}),
                                       flex::mask_or(flex::SlidingWindow{30}, flex::PrefixLm{10}));
  const BlockMask cbm = BlockMask::build(composed, 700, 700);
  for (auto& o : pr.out) std::fill(o.begin(), o.end(), NAN);
  const auto batch = pr.batch();
  flex_attention(p, std::span<const AttentionSequence>(batch), composed, flex::score_then(flex::SoftCap{1.5f}, flex::Alibi(8)), &cbm);
  EXPECT_LE(pr.relative_error(pr.reference(both(document({100, 150}), either(sliding(30), prefix_lm(10))),
                                           then(softcap(1.5), alibi(8)))),
            kTolerance);
}

// Causal, T = 256, blocks of 64: 4 diagonal blocks PARTIAL, 6 below FULL, 6 above EMPTY; both by the
// interval classifier and by evaluating a lambda on every element.
TEST(FlexAttention, BlockMaskCausalCounts) {
  const auto lambda = causal();
  for (const BlockMask& bm : {BlockMask::build(flex::Causal{}, 256, 256, 64, 64), BlockMask::build(lambda, 256, 256, 64, 64)}) {
    const BlockMask::Counts c = bm.counts();
    EXPECT_EQ(c.partial, 4);
    EXPECT_EQ(c.full, 6);
    EXPECT_EQ(c.empty, 6);
    for (int64_t qb = 0; qb < 4; ++qb)
      for (int64_t kb = 0; kb < 4; ++kb)
        EXPECT_EQ(bm.at(0, 0, qb, kb), qb == kb ? BlockClass::kPartial : kb < qb ? BlockClass::kFull : BlockClass::kEmpty);
  }
  // Sliding window 64 at T = 256: diagonal PARTIAL, first sub-diagonal PARTIAL (window edge), rest EMPTY.
  const BlockMask sw = BlockMask::build(flex::SlidingWindow{64}, 256, 256, 64, 64);
  EXPECT_EQ(sw.counts().partial, 7);
  EXPECT_EQ(sw.counts().full, 0);
  EXPECT_EQ(sw.counts().empty, 9);
  // Blocks clipped at the end: T = 200 -> 4 x 4 blocks, the last of 8 positions.
  EXPECT_EQ(BlockMask::build(flex::Causal{}, 200, 200, 64, 64).counts().partial, 4);
}

// The interval classifiers never claim FULL or EMPTY where an element says otherwise, and are exact
// for the single named masks on these shapes.
TEST(FlexAttention, BlockClassifiersAreSound) {
  const MaskExpr::Args args{23, 50, 40, {30, 1, 70, 64}};
  for (const char* text : {"causal", "sliding_window", "prefix_lm", "chunked", "document", "document&sliding_window",
                           "prefix_lm|chunked", "(chunked|sliding_window)&document", "sliding_window|document&prefix_lm"}) {
    for (int64_t engine_window : {0, 100}) {
      for (int64_t block : {1, 7, 16, 64}) {
        SCOPED_TRACE(std::string(text) + " engine window " + std::to_string(engine_window) + " block " +
                     std::to_string(block));
        const MaskExpr e = MaskExpr::parse(text, args, "test").with_key_window(engine_window);
        const auto lambda = [&e](int64_t b, int64_t h, int64_t q, int64_t k) { return e(b, h, q, k); };
        const BlockMask fast = BlockMask::build(e, 300, 310, block, block + 3);
        const BlockMask exact = BlockMask::build(lambda, 300, 310, block, block + 3);
        int64_t conservative = 0;
        for (int64_t qb = 0; qb < fast.num_q_blocks(); ++qb)
          for (int64_t kb = 0; kb < fast.num_kv_blocks(); ++kb) {
            const BlockClass f = fast.at(0, 0, qb, kb), x = exact.at(0, 0, qb, kb);
            if (f != BlockClass::kPartial) {
              EXPECT_EQ(f, x) << "block " << qb << "," << kb;
            }
            conservative += f != x;
          }
        if (engine_window == 0 && std::string(text).find_first_of("&|") == std::string::npos) {
          EXPECT_EQ(conservative, 0);
        }
      }
    }
  }
}

// The GPU kernels take a mask as one key interval per query (core/cuda/flex_mask.h): for every named
// mask and these and/or compositions (with and without the engine's window), the interval of
// gpu_program() holds exactly the keys the expression shows element by element.
TEST(FlexAttention, GpuProgramIntervalsEqualTheMask) {
  const MaskExpr::Args args{23, 50, 40, {30, 1, 70, 64}};
  for (const char* text : {"causal", "sliding_window", "prefix_lm", "chunked", "document", "document&sliding_window",
                           "prefix_lm|chunked", "(chunked|sliding_window)&document", "sliding_window|document&prefix_lm",
                           "(document|prefix_lm)&sliding_window"}) {
    for (int64_t engine_window : {0, 100}) {
      SCOPED_TRACE(std::string(text) + " engine window " + std::to_string(engine_window));
      const MaskExpr e = MaskExpr::parse(text, args, "test").with_key_window(engine_window);
      const cuda::FlexMask m = e.gpu_program();
      for (int64_t q = 0; q < 300; ++q) {
        int64_t first = 0, last = 0;
        m.interval(q, first, last);
        for (int64_t k = 0; k < 310; ++k) ASSERT_EQ(e(0, 0, q, k), k >= first && k <= last) << "q " << q << " k " << k;
      }
    }
  }
  std::string many = "causal";
  for (int i = 0; i < 9; ++i) many += "&causal";
  EXPECT_THROW(MaskExpr::parse(many, args, "test").gpu_program(), Error);
}

TEST(FlexAttention, CausalAndSlidingRunTheBaseMask) {
  MaskExpr::Args args;
  args.window = 40;
  EXPECT_EQ(MaskExpr::parse("causal", args, "t").causal_window(), 0);
  EXPECT_EQ(MaskExpr::parse("causal", args, "t").with_key_window(100).causal_window(), 100);
  EXPECT_EQ(MaskExpr::parse("sliding_window", args, "t").with_key_window(100).causal_window(), 40);
  EXPECT_EQ(MaskExpr::parse("causal&sliding_window", args, "t").causal_window(), 40);
  EXPECT_FALSE(MaskExpr::parse("causal|sliding_window", args, "t").causal_window().has_value());
  args.prefix = 5;
  EXPECT_FALSE(MaskExpr::parse("prefix_lm", args, "t").causal_window().has_value());
}

// One backend instance used from several threads with different engine windows and growing lengths
// (the per-window block mask cache is rebuilt while other threads read theirs).
TEST(FlexAttention, ConcurrentForwardsShareTheCache) {
  const auto backend = test::attention("flex:mask=prefix_lm,prefix=30");
  std::vector<std::thread> threads;
  std::vector<double> errors(4, INFINITY);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      double worst = 0;
      for (int64_t len : {100, 900, 1500, 2100}) {
        AttentionProblem pr(params({4, 2, 32}, t % 2 ? 64 : 0), {{len, 5}, {len / 2, 1}}, uint32_t(t * 10 + len));
        pr.run(*backend);
        worst = std::max(worst, pr.relative_error(pr.reference(both(prefix_lm(30), key_window(t % 2 ? 64 : 0)),
                                                               test::no_score)));
      }
      errors[size_t(t)] = worst;
    });
  for (auto& th : threads) th.join();
  for (double e : errors) EXPECT_LE(e, kTolerance);
}

void expect_create_error(const std::string& spec, const std::vector<std::string>& parts) {
  try {
    test::attention(spec);
    ADD_FAILURE() << spec << " was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& part : parts) EXPECT_NE(msg.find(part), std::string::npos) << spec << ": " << msg;
  }
}

TEST(FlexAttention, ConfigErrorsAtCreateTime) {
  expect_create_error("flex:mask=cuasal", {"flex", "unknown mask 'cuasal'", "causal, sliding_window"});
  expect_create_error("flex:mask=causal&nope", {"unknown mask 'nope'"});
  expect_create_error("flex:mask=causal&", {"bad mask expression 'causal&'", "position 8", "mask name"});
  expect_create_error("flex:mask=(causal|sliding_window,window=3", {"expected ')'"});
  expect_create_error("flex:mask=causal chunked", {"expected '&', '|' or the end"});
  expect_create_error("flex:mask=|causal", {"position 1"});
  expect_create_error("flex:mask=sliding_window", {"flex", "sliding_window", "'window'"});
  expect_create_error("flex:mask=causal&sliding_window", {"'window'"});
  expect_create_error("flex:mask=prefix_lm", {"'prefix'"});
  expect_create_error("flex:mask=chunked", {"'chunk'"});
  expect_create_error("flex:mask=document", {"'documents'"});
  expect_create_error("flex:score=softcap", {"'softcap'"});
  expect_create_error("flex:score=alibi+softcap", {"'softcap'"});
  expect_create_error("flex:score=tanh", {"score"});             // not a choice (params.cc)
  expect_create_error("flex:documents=[3,0]", {"documents"});    // lengths >= 1 (params.cc)
  EXPECT_NO_THROW(test::attention("flex:mask=sliding_window,window=8"));
  EXPECT_NO_THROW(test::attention("flex:mask=causal & ( prefix_lm | chunked ),prefix=3,chunk=4"));
}

TEST(FlexAttention, RejectsPagedLayout) {
  const auto backend = test::attention("flex");
  EXPECT_FALSE(backend->supports(params({4, 4, 64}), KvLayout::kPaged).ok);
  EXPECT_TRUE(backend->supports(params({4, 4, 64}), KvLayout::kContiguous).ok);
  EXPECT_FALSE(backend->supports(params({6, 4, 64}), KvLayout::kContiguous).ok);
}

}  // namespace
}  // namespace ctx
