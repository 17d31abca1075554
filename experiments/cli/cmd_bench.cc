// ctxlab bench decode|prefill|attention: CPU throughput measured against bounds taken in the same run.
//   decode:    single-stream tokens/s vs the memory-bandwidth roofline (bandwidth / bytes read per token),
//              bandwidth re-measured before each round of steps (shared machines drift)
//   prefill:   tokens/s and GFLOP/s vs Eigen's SGEMM on a matrix of the model's own shape
//   attention: the attention backends alone on one layer's synthetic K/V: prefill time, GFLOP/s and peak
//              memory growth, decode time and K/V bandwidth; paged vs contiguous decode per block size
// Results print as Markdown table rows (the format of bench/RESULTS.md).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "core/base/error.h"
#include "core/base/system_info.h"
#include "core/base/threads.h"
#include "core/instruments/clock.h"
#include "core/instruments/memory_bandwidth.h"
#include "core/model/transformer.h"
#include "experiments/cli/bench_common.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "plugins/register_all.h"

namespace ctx::cli {
namespace {


int bench_decode(const Args& args) {
  po::options_description desc("bench decode options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("prompt-tokens", po::value<int64_t>()->default_value(16), "context before the timed steps")
      ("tokens", po::value<int64_t>()->default_value(16), "timed decode steps per round")
      ("rounds", po::value<int>()->default_value(7), "rounds of (bandwidth measurement, timed decode steps)")
      ("bandwidth-mib", po::value<int64_t>()->default_value(512), "buffer size of the bandwidth measurement");
  add_attention_option(desc);
  add_quant_option(desc);
  add_kv_option(desc);
  add_kv_quant_option(desc);
  po::variables_map vm;
  if (!parse_options("bench decode", "--model SPEC [options]", desc, args, vm)) return 0;
  const int64_t P = vm["prompt-tokens"].as<int64_t>(), N = vm["tokens"].as<int64_t>();
  const int rounds = vm["rounds"].as<int>();
  if (P < 1 || N < 1 || rounds < 1) fail("--prompt-tokens, --tokens and --rounds must be >= 1");

  auto model = load_model(vm["model"].as<std::string>());
  const std::string quant = apply_quant(vm, *model);
  print_model_line(*model, quant);
  const ModelConfig& c = model->config;
  Transformer tf(*model, make_attention(vm));
  tf.set_kv_compressor(make_kv_compressor(vm));
  tf.set_kv_quantization(make_kv_quant(vm));
  KvCache cache = tf.new_cache(P + 4 + N * rounds);
  const auto prompt = synthetic_tokens(P, c.vocab_size);
  SequenceStep prefill{&cache, prompt, -1};
  tf.forward({&prefill, 1});
  int32_t tok = prompt.back();
  auto step = [&] {
    SequenceStep s{&cache, std::span<const int32_t>(&tok, 1), -1};
    tf.forward({&s, 1});
  };
  for (int i = 0; i < 4; ++i) step();  // warm-up

  // Shared machines drift: each round measures the bandwidth right before its own decode steps,
  // and the ratio is taken per round. Medians over rounds are reported.
  std::vector<double> tps, copy, read, ratio_copy, ratio_read;
  double bytes = 0;
  for (int r = 0; r < rounds; ++r) {
    const MemoryBandwidth bw = measure_memory_bandwidth(size_t(vm["bandwidth-mib"].as<int64_t>()) << 20, 2);
    std::vector<double> times;
    for (int64_t i = 0; i < N; ++i) {
      const double t0 = monotonic_seconds();
      step();
      times.push_back(monotonic_seconds() - t0);
    }
    const double ctx_len = double(cache.position()) - double(N) / 2;
    bytes = double(model->weights.bytes_read_per_token()) + 2.0 * double(c.num_kv_layers() * c.kv_dim()) * 4.0 * ctx_len;
    const double t = 1.0 / median(times);
    tps.push_back(t);
    copy.push_back(bw.copy_gbps);
    read.push_back(bw.read_gbps);
    ratio_copy.push_back(t / (bw.copy_gbps * 1e9 / bytes));
    ratio_read.push_back(t / (bw.read_gbps * 1e9 / bytes));
  }
  std::printf("memory bandwidth (same run, %d threads, %s buffers, median of %d rounds): copy %.2f GB/s, read %.2f GB/s\n",
              num_threads(), human_bytes(double(vm["bandwidth-mib"].as<int64_t>()) * 1048576).c_str(), rounds,
              median(copy), median(read));
  std::printf("\n| model | threads | bytes/token | tok/s | ms/token | copy GB/s | roofline tok/s (copy) | ratio vs copy | read GB/s | ratio vs read |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::printf("| %s | %d | %s | %.2f | %.3f | %.2f | %.2f | **%.2f** | %.2f | %.2f |\n", c.summary().c_str(), num_threads(),
              human_bytes(bytes).c_str(), median(tps), 1e3 / median(tps), median(copy), median(copy) * 1e9 / bytes,
              median(ratio_copy), median(read), median(ratio_read));
  // bytes/token above counts KV as float32; a quantized cache holds (and dequantizes) fewer.
  std::printf("\nKV cache at the end: %s held, %s valid (kv-quant %s)\n", human_bytes(double(cache.bytes_reserved())).c_str(),
              human_bytes(double(cache.bytes_used())).c_str(), tf.kv_quantization().spec.c_str());
  return 0;
}

int bench_prefill(const Args& args) {
  po::options_description desc("bench prefill options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("prompt-tokens", po::value<std::string>()->default_value("128,512"), "prompt lengths, comma-separated")
      ("repeat", po::value<int>()->default_value(5), "timed repetitions per length (medians reported)");
  add_attention_option(desc);
  po::variables_map vm;
  if (!parse_options("bench prefill", "--model SPEC [options]", desc, args, vm)) return 0;
  const auto lengths = parse_size_list(vm["prompt-tokens"].as<std::string>(), "--prompt-tokens");
  const int repeat = std::max(1, vm["repeat"].as<int>());
  auto model = load_model(vm["model"].as<std::string>());
  print_model_line(*model);
  const ModelConfig& c = model->config;
  Transformer tf(*model, make_attention(vm));

  // Reference: Eigen SGEMM of the MLP up-projection shape [P, d] x [d, ff] with the same threads,
  // timed right before each prefill repetition (shared machines drift); ratios are per repetition.
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  std::printf("\n| model | threads | prompt tokens | ms | tok/s | GFLOP/s | SGEMM GFLOP/s (same run) | ratio |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int64_t P : lengths) {
    if (P < 1) fail("--prompt-tokens entries must be >= 1");
    const auto prompt = synthetic_tokens(P, c.vocab_size);
    RowMat a = RowMat::Random(P, c.hidden_size), b = RowMat::Random(c.intermediate_size, c.hidden_size);
    RowMat y(P, c.intermediate_size);
    const double gemm_flops = 2.0 * double(P) * double(c.hidden_size) * double(c.intermediate_size);
    // Matmul FLOPs for P rows + classifier for one row + causal attention (QK^T and PV over P^2/2).
    const double linear_params =
        double(c.num_layers) * double(c.hidden_size * (2 * c.q_dim() + 2 * c.kv_dim()) + 3 * c.hidden_size * c.intermediate_size);
    const double flops = 2.0 * linear_params * double(P) + 2.0 * double(c.vocab_size * c.hidden_size) +
                         double(c.num_layers * c.num_heads) * 2.0 * double(P) * double(P) * double(c.head_dim);
    std::vector<double> secs, ref, ratio;
    for (int r = 0; r < repeat + 1; ++r) {
      double t0 = monotonic_seconds();
      y.noalias() = a * b.transpose();
      const double g = gemm_flops / (monotonic_seconds() - t0) / 1e9;
      KvCache cache = tf.new_cache(P);
      SequenceStep s{&cache, prompt, -1};
      t0 = monotonic_seconds();
      tf.forward({&s, 1});
      const double sec = monotonic_seconds() - t0;
      if (r == 0) continue;  // warm-up
      secs.push_back(sec);
      ref.push_back(g);
      ratio.push_back(flops / sec / 1e9 / g);
    }
    const double sec = median(secs);
    std::printf("| %s | %d | %lld | %.1f | %.1f | %.1f | %.1f | %.2f |\n", c.summary().c_str(), num_threads(), (long long)P,
                sec * 1e3, double(P) / sec, flops / sec / 1e9, median(ref), median(ratio));
  }
  return 0;
}

// ---- bench attention ----

// Peak resident-memory growth of one call. glibc's free heap memory is handed back to the kernel
// first (malloc_trim) and the kernel's high-water mark is reset (writing "5" to /proc/self/clear_refs,
// Linux >= 4.0); VmHWM after the call minus VmRSS before it is then the most memory the call had
// touched at any moment, whether or not it freed it before returning. An exact peak without a
// sampling thread and without a child process (a forked child cannot use libgomp's thread pool).
// Returns -1 where the reset is not permitted.
int64_t proc_status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  const std::string prefix = std::string(key) + ":";
  for (std::string line; std::getline(f, line);)
    if (line.rfind(prefix, 0) == 0) return std::stoll(line.substr(prefix.size()));
  return -1;
}

template <class F>
double peak_rss_growth(F&& call) {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  std::ofstream reset("/proc/self/clear_refs");
  reset << "5";
  reset.close();
  const int64_t before = proc_status_kib("VmRSS");
  call();
  const int64_t peak = proc_status_kib("VmHWM");
  if (!reset.good() || before < 0 || peak < 0) return -1;
  return double(std::max<int64_t>(0, peak - before)) * 1024.0;
}

// Deterministic values in [-1, 1) (a hash of the index), identical in every cache layout.
float synthetic_value(uint64_t i) {
  i = (i + 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
  i = (i ^ (i >> 31)) * 0x94D049BB133111EBull;
  return float(int64_t(i >> 40) - (int64_t(1) << 23)) / float(1 << 23);
}

// One layer's K/V of length T: contiguous (block_size 0) or paged over a fresh pool, with blocks in
// allocation order (as one sequence that grew alone gets them) or, when `shuffled`, in a fixed random
// order (a pool fragmented by many sequences coming and going).
KvCache synthetic_cache(const AttentionParams& p, int64_t block_size, int64_t T, bool shuffled) {
  ModelConfig shape;
  shape.num_layers = 1;
  shape.num_kv_heads = p.num_kv_heads;
  shape.head_dim = p.head_dim;
  auto pool = block_size > 0 ? std::make_shared<BlockPool>(shape, block_size) : nullptr;
  if (pool && shuffled) {  // freed in random order, so the free list hands them out shuffled
    std::vector<int32_t> ids(static_cast<size_t>((T + block_size - 1) / block_size));
    for (int32_t& b : ids) b = pool->allocate();
    std::shuffle(ids.begin(), ids.end(), std::mt19937(12345));
    for (int32_t b : ids) pool->release(b);
  }
  KvCache cache = pool ? KvCache(shape, std::move(pool)) : KvCache(shape, T);
  cache.reserve(T);
  for (int64_t g = 0; g < p.num_kv_heads; ++g)
    for (int64_t t = 0; t < T; ++t) {
      float* k = cache.key_slot(0, g, t);
      float* v = cache.value_slot(0, g, t);
      const uint64_t base = uint64_t((g * T + t) * p.head_dim) * 2;
      for (int64_t d = 0; d < p.head_dim; ++d) k[d] = synthetic_value(base + uint64_t(2 * d)), v[d] = synthetic_value(base + uint64_t(2 * d + 1));
    }
  cache.set_length(T);
  return cache;
}

std::vector<std::string> split_specs(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) fail("--backends: empty entry in '", text, "' (expected specs separated by ';', e.g. \"eager;paged:block_size=16\")");
    out.push_back(item);
    pos = end + 1;
  }
  return out;
}

// Median seconds of `calls` forward() calls of one decode step (after two warm-up calls).
double time_decode(const AttentionBackend& backend, const AttentionParams& p, const AttentionSequence& seq, int calls) {
  std::vector<double> t;
  for (int i = 0; i < calls + 2; ++i) {
    const double t0 = monotonic_seconds();
    backend.forward(p, {&seq, 1});
    if (i >= 2) t.push_back(monotonic_seconds() - t0);
  }
  return median(t);
}

std::string cell(double v, const char* fmt) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

int bench_attention(const Args& args) {
  po::options_description desc("bench attention options");
  desc.add_options()
      ("lengths", po::value<std::string>()->default_value("512,1024,2048,4096,8192,16384,32768"), "sequence lengths T, comma-separated")
      ("backends", po::value<std::string>()->default_value(""),
       "attention specs separated by ';' (specs contain commas), e.g. \"eager;sdpa;flash;flex;paged:block_size=16\"; default: every registered backend")
      ("heads", po::value<int64_t>()->default_value(8), "query heads")
      ("kv-heads", po::value<int64_t>()->default_value(8), "KV heads (GQA when fewer than --heads)")
      ("head-dim", po::value<int64_t>()->default_value(128), "head dimension")
      ("window", po::value<int64_t>()->default_value(0), "sliding window (0: full causal)")
      ("prefill-max", po::value<int64_t>()->default_value(0), "run prefill only for T up to this (0: every length); decode runs for every length")
      ("decode-only", po::bool_switch(), "no prefill at all (decode and the paged vs contiguous table only)")
      ("eager-limit-gib", po::value<double>()->default_value(2.0),
       "skip prefill of `eager` when its score matrix (heads * T^2 float32) would exceed this many GiB")
      ("repeat", po::value<int>()->default_value(3), "prefill repetitions per backend and length (median time, max memory)")
      ("decode-rounds", po::value<int>()->default_value(5), "decode rounds (median over rounds; backends interleaved per round)")
      ("decode-calls", po::value<int>()->default_value(20), "timed decode steps per round (median per round)")
      ("block-sizes", po::value<std::string>()->default_value("8,16,128"), "paged block sizes of the paged vs contiguous table (empty: no table)")
      ("contiguous", po::value<std::string>()->default_value("flash"), "the contiguous backend paged decode is compared with")
      ("paged-blocks", po::value<std::string>()->default_value("in-order"),
       "order of a paged cache's blocks in the pool: in-order (one sequence in a fresh pool) or shuffled (a fragmented pool)")
      ("baseline", po::value<std::string>()->default_value("flash"), "spec the relative-time table divides by (if in --backends)");
  po::variables_map vm;
  if (!parse_options("bench attention", "[options]", desc, args, vm)) return 0;
  const auto lengths = parse_size_list(vm["lengths"].as<std::string>(), "--lengths");
  const std::string bs_text = vm["block-sizes"].as<std::string>();
  const auto block_sizes = bs_text.empty() ? std::vector<int64_t>{} : parse_size_list(bs_text, "--block-sizes");
  const int repeat = std::max(1, vm["repeat"].as<int>()), rounds = std::max(1, vm["decode-rounds"].as<int>());
  const int calls = std::max(1, vm["decode-calls"].as<int>());
  const int64_t prefill_max = vm["prefill-max"].as<int64_t>();
  const bool decode_only = vm["decode-only"].as<bool>();
  const double eager_limit = vm["eager-limit-gib"].as<double>() * double(1ll << 30);
  const std::string paged_blocks = vm["paged-blocks"].as<std::string>();
  if (paged_blocks != "in-order" && paged_blocks != "shuffled")
    fail("--paged-blocks: '", paged_blocks, "' is not one of in-order|shuffled");
  const bool shuffled = paged_blocks == "shuffled";

  AttentionParams p;
  p.num_heads = vm["heads"].as<int64_t>();
  p.num_kv_heads = vm["kv-heads"].as<int64_t>();
  p.head_dim = vm["head-dim"].as<int64_t>();
  p.window = vm["window"].as<int64_t>();
  if (p.num_heads < 1 || p.num_kv_heads < 1 || p.head_dim < 1 || p.num_heads % p.num_kv_heads || p.window < 0)
    fail("--heads, --kv-heads and --head-dim must be >= 1 with --heads a multiple of --kv-heads, --window >= 0");
  p.scale = float(1.0 / std::sqrt(double(p.head_dim)));
  for (int64_t T : lengths)
    if (T < 1) fail("--lengths entries must be >= 1");
  for (int64_t b : block_sizes)
    if (b < 1) fail("--block-sizes entries must be >= 1");

  const auto& registry = builtin_catalog().attention;
  struct Backend {
    std::string spec, name;
    std::shared_ptr<const AttentionBackend> impl;
    Support support;
  };
  auto make = [&](const std::string& spec) {
    const PluginSpec resolved = registry.resolve(spec);
    std::shared_ptr<const AttentionBackend> impl = registry.create(resolved);
    const Support s = impl->supports(p, impl->layout());
    return Backend{spec, resolved.name, std::move(impl), s};
  };
  std::vector<Backend> backends;
  const std::string list = vm["backends"].as<std::string>();
  for (const std::string& spec : list.empty() ? registry.names() : split_specs(list)) backends.push_back(make(spec));
  const Backend contiguous = make(vm["contiguous"].as<std::string>());
  if (contiguous.impl->layout() != KvLayout::kContiguous) fail("--contiguous: '", contiguous.spec, "' does not read a contiguous cache");
  std::vector<Backend> paged;
  for (int64_t b : block_sizes) paged.push_back(make("paged:block_size=" + std::to_string(b)));
  const std::string baseline = vm["baseline"].as<std::string>();

  std::printf("attention: heads %lld, kv heads %lld, head_dim %lld, window %lld, float32, one layer, batch 1 | threads %d\n",
              (long long)p.num_heads, (long long)p.num_kv_heads, (long long)p.head_dim, (long long)p.window, num_threads());
  std::printf("prefill: T new rows over T keys, causal FLOPs 2*T^2*head_dim*heads, median of %d; peak RSS growth during the "
              "call (max over repetitions; inputs and cache allocated before)\n", repeat);
  std::printf("decode: 1 row at position T-1 over T keys, median over %d rounds of the median of %d steps; GB/s counts K+V read "
              "once (2*kv_heads*T*head_dim*4 bytes)\npaged caches: blocks %s in the pool\n", rounds, calls, paged_blocks.c_str());

  // Warm-up: thread pools and first-touch costs outside the measurements.
  for (const Backend& b : backends)
    if (b.support.ok) {
      KvCache c = synthetic_cache(p, b.impl->block_size(), 64, shuffled);
      std::vector<float> q(size_t(64 * p.num_heads * p.head_dim), 0.5f), o(q.size());
      AttentionSequence s{q.data(), 64, c.view(0), o.data(), 0};
      b.impl->forward(p, {&s, 1});
    }

  std::printf("\n| backend | T | prefill ms | prefill GFLOP/s | prefill peak RSS growth | decode ms/token | decode K/V GB/s |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  struct Relative {
    std::string spec;
    int64_t T;
    double prefill, decode;  // time / baseline time, medians of per-round ratios (NaN: not measured)
  };
  std::vector<Relative> relative;
  struct PagedRow {
    int64_t T;
    double contiguous_ms;
    std::vector<double> ms, ratio;
  };
  std::vector<PagedRow> paged_rows;
  const int64_t row = p.num_heads * p.head_dim;
  const int base_index = int(std::find_if(backends.begin(), backends.end(), [&](const Backend& b) { return b.spec == baseline; }) - backends.begin());
  const bool have_base = base_index < int(backends.size()) && backends.size() > 1;
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

  for (int64_t T : lengths) {
    std::map<int64_t, KvCache> caches;  // by block size, 0 = contiguous; built once per length
    auto cache_for = [&](const AttentionBackend& b) -> const KvCache& {
      const int64_t bs = b.layout() == KvLayout::kPaged ? b.block_size() : 0;
      auto it = caches.find(bs);
      if (it == caches.end()) it = caches.emplace(bs, synthetic_cache(p, bs, T, shuffled)).first;
      return it->second;
    };
    const size_t nb = backends.size();
    std::vector<std::string> skip(nb);
    for (size_t i = 0; i < nb; ++i) {
      if (!backends[i].support.ok) skip[i] = "unsupported: " + backends[i].support.reason;
      else if (decode_only) skip[i] = "not run (--decode-only)";
      else if (prefill_max > 0 && T > prefill_max) skip[i] = "not run (--prefill-max)";
      else if (backends[i].name == "eager" && double(p.num_heads) * double(T) * double(T) * 4.0 > eager_limit)
        skip[i] = "skipped: O(T^2) memory";
    }
    // Prefill, backends interleaved within each repetition (drift hits all alike).
    std::vector<std::vector<double>> pre_s(nb);
    std::vector<double> pre_mem(nb, -1);
    const bool any_prefill = std::any_of(skip.begin(), skip.end(), [](const std::string& s) { return s.empty(); });
    std::vector<float> q, out;
    if (any_prefill) {
      q.resize(size_t(T * row));
      for (size_t i = 0; i < q.size(); ++i) q[i] = synthetic_value(uint64_t(i) + (1ull << 40));
      out.assign(q.size(), 0.0f);
    }
    for (int r = 0; r < repeat && any_prefill; ++r)
      for (size_t i = 0; i < nb; ++i) {
        if (!skip[i].empty()) continue;
        const AttentionSequence s{q.data(), T, cache_for(*backends[i].impl).view(0), out.data(), 0};
        double sec = 0;
        const double mem = peak_rss_growth([&] {
          const double t0 = monotonic_seconds();
          backends[i].impl->forward(p, {&s, 1});
          sec = monotonic_seconds() - t0;
        });
        pre_s[i].push_back(sec);
        pre_mem[i] = std::max(pre_mem[i], mem);
      }
    q.clear(), q.shrink_to_fit(), out.clear(), out.shrink_to_fit();

    // Decode: the query of position T-1; main backends and the paged/contiguous comparison share rounds.
    std::vector<float> q1(static_cast<size_t>(row)), o1(static_cast<size_t>(row));
    for (int64_t i = 0; i < row; ++i) q1[size_t(i)] = synthetic_value(uint64_t(i) + (3ull << 40));
    auto decode = [&](const Backend& b) {
      const AttentionSequence s{q1.data(), 1, cache_for(*b.impl).view(0), o1.data(), 0};
      return time_decode(*b.impl, p, s, calls);
    };
    std::vector<std::vector<double>> dec_s(nb), paged_s(paged.size()), paged_ratio(paged.size());
    std::vector<double> contiguous_s;
    for (int r = 0; r < rounds; ++r) {
      for (size_t i = 0; i < nb; ++i)
        if (backends[i].support.ok) dec_s[i].push_back(decode(backends[i]));
      if (paged.empty() || !contiguous.support.ok) continue;
      const double c = decode(contiguous);
      contiguous_s.push_back(c);
      for (size_t j = 0; j < paged.size(); ++j) {
        if (!paged[j].support.ok) continue;
        const double t = decode(paged[j]);
        paged_s[j].push_back(t);
        paged_ratio[j].push_back(t / c);
      }
    }

    const double flops = 2.0 * double(T) * double(T) * double(p.head_dim) * double(p.num_heads);
    const double kv_bytes = 2.0 * double(p.num_kv_heads) * double(T) * double(p.head_dim) * 4.0;
    for (size_t i = 0; i < nb; ++i) {
      const Backend& b = backends[i];
      if (!b.support.ok) {
        std::printf("| %s | %lld | %s | | | | |\n", b.spec.c_str(), (long long)T, skip[i].c_str());
        continue;
      }
      std::string pre_ms = skip[i], gflops, mem;
      if (skip[i].empty()) {
        const double sec = median(pre_s[i]);
        pre_ms = cell(sec * 1e3, "%.1f");
        gflops = cell(flops / sec / 1e9, "%.1f");
        mem = pre_mem[i] < 0 ? "n/a" : human_bytes(pre_mem[i]);
      }
      const double dec = median(dec_s[i]);
      std::printf("| %s | %lld | %s | %s | %s | %.3f | %.1f |\n", b.spec.c_str(), (long long)T, pre_ms.c_str(), gflops.c_str(),
                  mem.c_str(), dec * 1e3, kv_bytes / dec / 1e9);
      if (have_base && int(i) != base_index && backends[size_t(base_index)].support.ok) {
        auto ratio = [](const std::vector<double>& a, const std::vector<double>& b) {
          std::vector<double> r;
          for (size_t k = 0; k < std::min(a.size(), b.size()); ++k) r.push_back(a[k] / b[k]);
          return r.empty() ? kNaN : median(r);
        };
        relative.push_back({b.spec, T, ratio(pre_s[i], pre_s[size_t(base_index)]), ratio(dec_s[i], dec_s[size_t(base_index)])});
      }
    }
    std::fflush(stdout);
    if (!contiguous_s.empty()) {
      PagedRow pr{T, median(contiguous_s) * 1e3, {}, {}};
      for (size_t j = 0; j < paged.size(); ++j) {
        pr.ms.push_back(paged_s[j].empty() ? kNaN : median(paged_s[j]) * 1e3);
        pr.ratio.push_back(paged_ratio[j].empty() ? kNaN : median(paged_ratio[j]));
      }
      paged_rows.push_back(std::move(pr));
    }
  }

  if (!relative.empty()) {
    std::printf("\ntime relative to %s (median of per-round ratios; < 1 is faster)\n\n", baseline.c_str());
    std::printf("| backend | T | prefill time / %s | decode time / %s |\n|---|---|---|---|\n", baseline.c_str(), baseline.c_str());
    for (const Relative& r : relative)
      std::printf("| %s | %lld | %s | %.2f |\n", r.spec.c_str(), (long long)r.T,
                  std::isnan(r.prefill) ? "" : cell(r.prefill, "%.2f").c_str(), r.decode);
  }
  if (!paged_rows.empty()) {
    std::printf("\npaged vs contiguous decode (%s), ms/token; ratio = median of per-round paged/contiguous\n\n| T | %s ms |",
                contiguous.spec.c_str(), contiguous.spec.c_str());
    for (const Backend& b : paged) std::printf(" %s ms | ratio |", b.spec.c_str());
    std::printf("\n|---|---|");
    for (size_t j = 0; j < paged.size(); ++j) std::printf("---|---|");
    std::printf("\n");
    for (const PagedRow& r : paged_rows) {
      std::printf("| %lld | %.3f |", (long long)r.T, r.contiguous_ms);
      for (size_t j = 0; j < paged.size(); ++j) std::printf(" %.3f | **%.3f** |", r.ms[j], r.ratio[j]);
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace

int cmd_bench(const Args& args) {
  const std::string usage =
      "usage: ctxlab bench decode|prefill|quant|kv|gpu-decode|gpu-attention|gpu-batch|gpu-prefill-attention|gpu-timeline [options]\n"
      "       (ctxlab bench decode --help)\n"
      "       ctxlab bench attention [options]                         (ctxlab bench attention --help)";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("%s\n", usage.c_str());
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "decode") return bench_decode(rest);
  if (args[0] == "prefill") return bench_prefill(rest);
  if (args[0] == "attention") return bench_attention(rest);
  if (args[0] == "quant") return bench_quant(rest);
  if (args[0] == "kv") return bench_kv(rest);
  if (args[0] == "gpu-decode") return bench_gpu_decode(rest);
  if (args[0] == "gpu-attention") return bench_gpu_attention(rest);
  if (args[0] == "gpu-batch") return bench_gpu_batch(rest);
  if (args[0] == "gpu-prefill-attention") return bench_gpu_prefill_attention(rest);
  if (args[0] == "gpu-timeline") return bench_gpu_timeline(rest);
  fail("unknown benchmark '", args[0],
       "' (known: decode, prefill, attention, quant, kv, gpu-decode, gpu-attention, gpu-batch, gpu-prefill-attention, gpu-timeline)");
}

}  // namespace ctx::cli
