// KIVI-quantized KV on the GPU (core/cuda/gpu_attention.h, kivi): the device's quantize kernels
// against kv_quant.h's CPU functions on the same bf16 values (codes equal except at exact rounding
// ties, the fp16 params bit for bit), and the fused decode attention kernel against a float64
// reference over the CPU KvQuantStore's dequantized prefix and the bf16 rest, with the tolerance
// of gpu_attention_test (the output rounded to bf16); the kernel reads its bf16 rest from a ring of
// the newest positions, as the engine keeps them. Cases: decode and prefill chunks; 2, 4 and 8
// bits; head dims 64, 128, 256 (the wide path) and 80 (generic), and the generic path for all; MHA
// and GQA (2 and 4 query heads per KV head); lengths with no quantized prefix, partial groups, all
// but the query's own key quantized; groups that are and are not multiples of the wide path's
// tile; explicit split counts whose chunk boundaries fall inside key groups; batched decode of
// mixed lengths. The wide path runs on tensor cores (the default for GQA where it applies, and for
// 4 bits at head_dim 128: fp16 codes and query-times-scale, values dequantized in fp16; tolerance
// with the flash kernels' spread term; at 4 bits also with the code tiles through registers and
// through a cp.async ring of 2 and 3 tiles), on CUDA cores, and as the engine takes it by default
// (where the ring may take fewer chunks than asked). Paged cases keep the bf16 ring (rounded up to
// whole blocks) in a pool of blocks in shuffled order, as the engine's paged KIVI cache does, also
// with blocks of 1 and with a ring that would hold the whole cache (then the positions are paged).
// Label "gpu".
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/cuda/gpu_attention.h"
#include "core/kv/kv_quant.h"
#include "tests/gpu/attention_reference.h"

namespace ctx::cuda {
namespace {

using attention_ref::random_bf16;

struct KiviCase {
  int64_t heads, kv_heads, head_dim, length, queries;
  int bits;
  int64_t group, residual;
  int splits = 0;
  std::vector<int64_t> batch = {};  // not empty: batched decode of these lengths
  int64_t block = 0;                // > 0: the bf16 rows paged in blocks of this many
  std::string name() const {
    std::string n = str_cat("h", heads, "_kv", kv_heads, "_d", head_dim, "_b", bits, "_g", group, "_r", residual);
    if (batch.empty()) {
      n += str_cat("_len", length, "_q", queries);
    } else {
      n += "_batch";
      for (int64_t l : batch) n += str_cat("_", l);
    }
    n += str_cat("_split", splits);
    return block > 0 ? n + str_cat("_block", block) : n;
  }
  GpuAttentionCase gpu_case() const {
    GpuAttentionCase c;
    c.heads = heads, c.kv_heads = kv_heads, c.head_dim = head_dim, c.length = length, c.queries = queries;
    c.splits = splits;
    c.batch_lengths = batch;
    c.block_size = block;
    c.kivi.bits = bits, c.kivi.group = group, c.kivi.residual = residual;
    return c;
  }
};

void PrintTo(const KiviCase& c, std::ostream* os) { *os << c.name(); }

std::vector<KiviCase> attention_cases() {
  std::vector<KiviCase> out;
  for (int bits : {2, 4, 8})
    for (int64_t hd : {64, 128, 80})
      for (auto [heads, kv] : {std::pair<int64_t, int64_t>{4, 4}, {8, 4}, {16, 4}}) {
        out.push_back({heads, kv, hd, 1000, 1, bits, 32, 128});  // 864 quantized, 136 bf16, 16 chunks
        out.push_back({heads, kv, hd, 100, 1, bits, 32, 128});   // shorter than the residual: no prefix
      }
  for (int bits : {4, 8}) {
    out.push_back({4, 2, 256, 700, 1, bits, 32, 64});     // head dim 256 (tile 8)
    out.push_back({16, 4, 256, 700, 1, bits, 16, 64});    // ... GQA 4 (tile 4), group 16
    out.push_back({4, 4, 128, 160, 1, bits, 32, 128});    // one short of the first group
    out.push_back({4, 4, 128, 161, 1, bits, 32, 128});    // the first group
    out.push_back({4, 4, 128, 1025, 1, bits, 32, 0});     // no residual: every key but the query's own quantized
    out.push_back({4, 4, 128, 1000, 1, bits, 128, 32});   // large groups
    out.push_back({4, 2, 64, 1000, 1, bits, 16, 16});     // group = the tile
    out.push_back({4, 2, 64, 1000, 1, bits, 8, 16});      // group < tile: generic
    out.push_back({4, 2, 128, 1000, 1, bits, 12, 20});    // group not a multiple of 8, value blocks 12,...,12,8
  }
  // Chunk boundaries inside key groups, more chunks than keys, one chunk.
  for (int splits : {1, 3, 7, 64, 256}) {
    out.push_back({8, 2, 128, 1000, 1, 4, 32, 128, splits});
    out.push_back({4, 4, 64, 777, 1, 8, 64, 50, splits});
  }
  // Prefill chunks after a quantized prefix (causal over the chunk, qlen of its first position).
  out.push_back({4, 2, 128, 1000, 300, 4, 32, 64});
  out.push_back({4, 4, 64, 777, 40, 8, 16, 100, 3});
  out.push_back({4, 2, 80, 500, 77, 2, 32, 64});
  out.push_back({32, 32, 128, 4096, 1, 4, 32, 128});  // the benchmark's shape at 4k
  out.push_back({32, 8, 128, 4096, 1, 8, 32, 128});
  out.push_back({32, 8, 128, 4096, 1, 4, 32, 128});  // GQA int4 (3-tile ring by default)
  // Batched decode: sequences with and without a prefix.
  out.push_back({8, 2, 128, 0, 1, 4, 32, 128, 0, {1, 17, 300, 1000, 129, 160}});
  out.push_back({4, 4, 80, 0, 1, 2, 16, 32, 7, {1000, 5, 333}});
  // Paged bf16 rows (the ring in shuffled pool blocks).
  out.push_back({4, 4, 128, 1000, 1, 4, 32, 128, 0, {}, 16});   // MHA int4: the cp.async ring kernel
  out.push_back({32, 8, 128, 4096, 1, 4, 32, 128, 0, {}, 16});  // GQA int4
  out.push_back({8, 2, 128, 1000, 1, 8, 32, 128, 0, {}, 64});
  out.push_back({4, 2, 64, 1000, 1, 4, 16, 16, 0, {}, 1});      // blocks of one row
  out.push_back({4, 2, 80, 500, 77, 2, 32, 64, 0, {}, 16});     // generic, a prefill chunk
  out.push_back({4, 2, 128, 1000, 300, 4, 32, 64, 0, {}, 32});  // a prefill chunk on tensor cores
  out.push_back({4, 4, 64, 100, 1, 8, 32, 128, 0, {}, 16});     // ring >= the cache: positions paged
  out.push_back({8, 2, 128, 0, 1, 4, 32, 128, 0, {1, 17, 300, 1000, 129, 160}, 16});
  return out;
}

// k and v ([sum of lengths, kv_heads * hd]) with each sequence's first quantized_length(position of
// its first query) entries replaced by what KvQuantStore holds for them, dequantized: the values
// the kernel must use.
void dequantize_prefixes(const GpuAttentionCase& c, std::vector<float>& k, std::vector<float>& v) {
  const int64_t hd = c.head_dim, kvh = c.kv_heads;
  const std::vector<int64_t> lengths = c.batch_lengths.empty() ? std::vector<int64_t>{c.length} : c.batch_lengths;
  int64_t first = 0;
  for (int64_t len : lengths) {
    const int64_t q = c.kivi.quantized_length(len - (c.batch_lengths.empty() ? c.queries : 1));
    std::vector<float> kt(size_t(kvh * q * hd)), vt(kt.size());  // [kv head][entry][hd]
    for (int64_t h = 0; h < kvh; ++h)
      for (int64_t j = 0; j < q; ++j)
        for (int64_t e = 0; e < hd; ++e) {
          kt[size_t((h * q + j) * hd + e)] = k[size_t(((first + j) * kvh + h) * hd + e)];
          vt[size_t((h * q + j) * hd + e)] = v[size_t(((first + j) * kvh + h) * hd + e)];
        }
    KvQuantStore store(c.kivi, kvh, hd);
    store.append(kt.data(), vt.data(), q * hd, q);
    for (int64_t h = 0; h < kvh; ++h) {
      store.dequantize(h, kt.data(), vt.data());
      for (int64_t j = 0; j < q; ++j)
        for (int64_t e = 0; e < hd; ++e) {
          k[size_t(((first + j) * kvh + h) * hd + e)] = kt[size_t(j * hd + e)];
          v[size_t(((first + j) * kvh + h) * hd + e)] = vt[size_t(j * hd + e)];
        }
    }
    first += len;
  }
}

class GpuKiviAttention : public ::testing::TestWithParam<KiviCase> {};

TEST_P(GpuKiviAttention, MatchesTheFloat64ReferenceOnTheDequantizedPrefix) {
  const KiviCase& kc = GetParam();
  GpuAttentionCase c = kc.gpu_case();
  const auto [q, k, v] = attention_ref::random_inputs(c, uint32_t(std::hash<std::string>()(kc.name())));
  auto kd = k, vd = v;
  dequantize_prefixes(c, kd, vd);
  std::vector<double> spread;
  const auto want = attention_ref::reference_attention(c, q, kd, vd, &spread);
  // The wide path on tensor cores (head_dim 64/128, 4/8 bits, groups of a multiple of 32; the
  // engine's choice with several query heads per block), on CUDA cores, and the generic path. The
  // tensor-core path rounds the dequantized values, the query times the key scales and the weights
  // P to fp16 (relative 2^-11) for the mma: its tolerance adds the flash kernels' spread term (2^-9
  // sum_j w_j |v_j|, gpu_attention_test), which bounds that with room to spare.
  // At 4 bits the tensor-core pass also runs with each way of bringing a warp's code tiles in
  // (kernels.h kivi_stages: registers, a cp.async ring of 2 or 3 tiles).
  struct Variant {
    const char* name;
    bool vectorized;
    int tensor_cores;
    int kivi_stages = -1;
  };
  std::vector<Variant> variants = {{"tensor-cores", true, 1}, {"cuda-cores", true, 0}, {"generic", false, -1},
                                   {"default", true, -1}};
  if (kc.bits == 4) {
    variants.push_back({"tensor-cores-registers", true, 1, 0});
    variants.push_back({"tensor-cores-ring2", true, 1, 2});
    variants.push_back({"tensor-cores-ring3", true, 1, 3});
  }
  for (const Variant& var : variants) {
    c.vectorized = var.vectorized, c.tensor_cores = var.tensor_cores, c.kivi_stages = var.kivi_stages;
    std::vector<float> got;
    try {
      got = gpu_attention(c, q, k, v);
    } catch (const Unsupported& e) {
      GTEST_SKIP() << e.what();
    }
    const auto d = attention_ref::compare_to_reference(got, want, var.vectorized && var.tensor_cores != 0 ? &spread : nullptr);
    std::printf("%s %s: max |gpu - ref| / max|ref| = %.3g\n", kc.name().c_str(), var.name, d.worst);
    EXPECT_EQ(d.bad, 0u) << kc.name() << " " << var.name << ": worst " << d.worst;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuKiviAttention, ::testing::ValuesIn(attention_cases()),
                         [](const auto& info) { return info.param.name(); });

// Codes and params of the device's quantize kernels against quantize_key_block / quantize_value_row.
class GpuKiviQuantize : public ::testing::TestWithParam<KiviCase> {};

// Whether x sits exactly half way between two codes of p (where float rounding may go either way).
bool at_tie(float x, KvQuantParam p) {
  if (p.scale() == 0) return false;
  const float t = (x - p.min()) / p.scale();
  return t - std::floor(t) == 0.5f;
}

// The code of channel i of a packed row.
unsigned code_at(const uint8_t* row, int64_t i, int bits) {
  return (unsigned(row[i * bits / 8]) >> ((i * bits) % 8)) & ((1u << bits) - 1);
}

TEST_P(GpuKiviQuantize, CodesAndParamsMatchTheCpu) {
  const KiviCase& kc = GetParam();
  const GpuAttentionCase c = kc.gpu_case();
  const int64_t hd = c.head_dim, kvh = c.kv_heads, g = c.kivi.group, bits = c.kivi.bits;
  const uint32_t seed = uint32_t(std::hash<std::string>()(kc.name()));
  // Keys with an outlier channel (KIVI's reason for per-channel keys) and a constant channel.
  auto k = random_bf16(size_t(c.length * kvh * hd), seed + 1, 1.f);
  const auto v = random_bf16(size_t(c.length * kvh * hd), seed + 2, 3.f);
  for (int64_t j = 0; j < c.length; ++j)
    for (int64_t h = 0; h < kvh; ++h) {
      k[size_t((j * kvh + h) * hd + 1)] = attention_ref::round_bf16(20.f * k[size_t((j * kvh + h) * hd + 1)]);  // the cache holds bf16
      k[size_t((j * kvh + h) * hd + hd - 1)] = 0.5f;
    }
  KiviPrefix got;
  try {
    got = gpu_kivi_quantize(c, k, v);
  } catch (const Unsupported& e) {
    GTEST_SKIP() << e.what();
  }
  const int64_t qlen = c.kivi.quantized_length(c.length - c.queries), rb = kv_quant_row_bytes(hd, int(bits));
  const int64_t nb = (hd + g - 1) / g;
  ASSERT_EQ(got.qlen, qlen);
  ASSERT_EQ(got.row_bytes, rb);
  ASSERT_EQ(got.value_blocks, nb);
  ASSERT_EQ(int64_t(got.k_codes.size()), kvh * qlen * rb);
  ASSERT_EQ(int64_t(got.v_codes.size()), kvh * qlen * rb);
  ASSERT_EQ(int64_t(got.k_params.size()), kvh * qlen / g * hd);
  ASSERT_EQ(int64_t(got.v_params.size()), kvh * qlen * nb);
  const auto near = [](KvQuantParam a, KvQuantParam b) { return a == b; };  // fp16 bits: the same rule, bit for bit
  size_t bad_params = 0, bad_codes = 0, ties = 0;
  std::vector<float> rows(size_t(g * hd));
  std::vector<uint8_t> codes(size_t(std::max(g, int64_t(1)) * rb));
  std::vector<KvQuantParam> params(size_t(std::max(hd, nb)));
  for (int64_t h = 0; h < kvh; ++h) {
    for (int64_t b = 0; b < qlen / g; ++b) {  // keys, per group
      for (int64_t t = 0; t < g; ++t)
        for (int64_t e = 0; e < hd; ++e) rows[size_t(t * hd + e)] = k[size_t(((b * g + t) * kvh + h) * hd + e)];
      quantize_key_block(rows.data(), hd, g, hd, int(bits), codes.data(), params.data());
      for (int64_t d = 0; d < hd; ++d) bad_params += !near(params[size_t(d)], got.k_params[size_t((h * qlen / g + b) * hd + d)]);
      for (int64_t t = 0; t < g; ++t)
        for (int64_t d = 0; d < hd; ++d) {
          const unsigned want = code_at(codes.data() + t * rb, d, int(bits));
          const unsigned have = code_at(got.k_codes.data() + (h * qlen + b * g + t) * rb, d, int(bits));
          if (want == have) continue;
          const bool tie = at_tie(rows[size_t(t * hd + d)], params[size_t(d)]) && (want > have ? want - have : have - want) == 1;
          ties += tie, bad_codes += !tie;
        }
    }
    for (int64_t j = 0; j < qlen; ++j) {  // values, per token
      const float* row = v.data() + (j * kvh + h) * hd;
      quantize_value_row(row, hd, g, int(bits), codes.data(), params.data());
      for (int64_t b = 0; b < nb; ++b) bad_params += !near(params[size_t(b)], got.v_params[size_t((h * qlen + j) * nb + b)]);
      for (int64_t d = 0; d < hd; ++d) {
        const unsigned want = code_at(codes.data(), d, int(bits));
        const unsigned have = code_at(got.v_codes.data() + (h * qlen + j) * rb, d, int(bits));
        if (want == have) continue;
        const bool tie = at_tie(row[d], params[size_t(d / g)]) && (want > have ? want - have : have - want) == 1;
        ties += tie, bad_codes += !tie;
      }
    }
  }
  std::printf("%s: %zu codes differ at exact ties\n", kc.name().c_str(), ties);
  EXPECT_EQ(bad_params, 0u) << kc.name();
  EXPECT_EQ(bad_codes, 0u) << kc.name();
}

std::vector<KiviCase> quantize_cases() {
  std::vector<KiviCase> out;
  for (int bits : {2, 4, 8})
    for (int64_t hd : {64, 80, 128})
      for (int64_t group : {32, 12, 128}) out.push_back({4, 2, hd, 700, 1, bits, group, 50});
  out.push_back({4, 4, 256, 300, 1, 4, 1, 0});  // one-token groups: every value block one channel
  out.push_back({4, 4, 64, 100, 1, 4, 32, 128}); // nothing quantized
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuKiviQuantize, ::testing::ValuesIn(quantize_cases()),
                         [](const auto& info) { return info.param.name(); });

TEST(GpuKiviErrors, BadCasesAreClearErrors) {
  GpuAttentionCase c;
  c.heads = 4, c.kv_heads = 4, c.head_dim = 64, c.length = 8;
  c.kivi.bits = 3;
  const std::vector<float> q(4 * 64), kv(8 * 4 * 64);
  const auto message = [&] {
    try {
      gpu_attention(c, q, kv, kv);
    } catch (const Unsupported&) {
      return std::string("unsupported");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message().find("kivi bits 3 must be 2, 4 or 8"), std::string::npos) << message();
  c.kivi.bits = 4, c.window = 16;
  EXPECT_NE(message().find("without a window"), std::string::npos) << message();
  c.window = 0, c.kivi.group = 0;
  EXPECT_NE(message().find("kivi group 0"), std::string::npos) << message();
}

}  // namespace
}  // namespace ctx::cuda
