// ctxlab bench decode|prefill: CPU throughput measured against bounds taken in the same run.
//   decode:  single-stream tokens/s vs the memory-bandwidth roofline (bandwidth / bytes read per token),
//            bandwidth re-measured before each round of steps (shared machines drift)
//   prefill: tokens/s and GFLOP/s vs Eigen's SGEMM on a matrix of the model's own shape
// Results print as Markdown table rows (the format of bench/RESULTS.md).
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "core/base/error.h"
#include "core/base/system_info.h"
#include "core/base/threads.h"
#include "core/instruments/memory_bandwidth.h"
#include "core/model/transformer.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {
namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Deterministic token ids in [3, vocab) (skips the usual special ids).
std::vector<int32_t> synthetic_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(3 + (i * 7919 + 13) % std::max<int64_t>(1, vocab - 3));
  return t;
}

void print_model_line(const Model& m) {
  std::printf("model: %s | %s | weights %s (float32) | threads %d\n", m.spec.c_str(), m.config.summary().c_str(),
              human_bytes(double(m.weights.bytes_held())).c_str(), num_threads());
}

int bench_decode(const Args& args) {
  po::options_description desc("bench decode options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("prompt-tokens", po::value<int64_t>()->default_value(16), "context before the timed steps")
      ("tokens", po::value<int64_t>()->default_value(16), "timed decode steps per round")
      ("rounds", po::value<int>()->default_value(7), "rounds of (bandwidth measurement, timed decode steps)")
      ("bandwidth-mib", po::value<int64_t>()->default_value(512), "buffer size of the bandwidth measurement");
  add_attention_option(desc);
  po::variables_map vm;
  if (!parse_options("bench decode", "--model SPEC [options]", desc, args, vm)) return 0;
  const int64_t P = vm["prompt-tokens"].as<int64_t>(), N = vm["tokens"].as<int64_t>();
  const int rounds = vm["rounds"].as<int>();
  if (P < 1 || N < 1 || rounds < 1) fail("--prompt-tokens, --tokens and --rounds must be >= 1");

  auto model = load_model(vm["model"].as<std::string>());
  print_model_line(*model);
  const ModelConfig& c = model->config;
  Transformer tf(*model, make_attention(vm));
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
      const double t0 = now();
      step();
      times.push_back(now() - t0);
    }
    const double ctx_len = double(cache.length()) - double(N) / 2;
    bytes = double(model->weights.bytes_read_per_token()) + 2.0 * double(c.num_layers * c.kv_dim()) * 4.0 * ctx_len;
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
      double t0 = now();
      y.noalias() = a * b.transpose();
      const double g = gemm_flops / (now() - t0) / 1e9;
      KvCache cache = tf.new_cache(P);
      SequenceStep s{&cache, prompt, -1};
      t0 = now();
      tf.forward({&s, 1});
      const double sec = now() - t0;
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

}  // namespace

int cmd_bench(const Args& args) {
  const std::string usage = "usage: ctxlab bench decode|prefill --model SPEC [options]  (ctxlab bench decode --help)";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::printf("%s\n", usage.c_str());
    return args.empty() ? 2 : 0;
  }
  const Args rest(args.begin() + 1, args.end());
  if (args[0] == "decode") return bench_decode(rest);
  if (args[0] == "prefill") return bench_prefill(rest);
  fail("unknown benchmark '", args[0], "' (known: decode, prefill)");
}

}  // namespace ctx::cli
