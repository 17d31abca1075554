// ctxlab bench kv: what each KV compressor holds and costs at long context. Per context length the
// prompt is prefilled once (queries of every layer recorded); each compressor x keep ratio then
// works on a fork of that cache, replaying the compressor on the recorded queries exactly as the
// Transformer calls it after a prefill, and decodes a few tokens with the compressor attached
// (decode-time policies re-compress on those steps). Each KV quantization spec (--kv-quant) gets a
// row too: a fork of the prefilled cache is flushed into its quantized store exactly as the
// Transformer does after a prefill, then decodes with the quantization on (its "compress ms" is the
// quantization time; its "keep" column is 1: every entry is kept, in fewer bits). Results print as
// Markdown table rows.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/instruments/clock.h"
#include "core/kv/kv_compressor.h"
#include "core/model/transformer.h"
#include "experiments/cli/bench_common.h"
#include "experiments/cli/cli_common.h"
#include "plugins/register_all.h"

namespace ctx::cli {
namespace {

// Keeps everything and records each layer's prefill queries, for replays on forks of the cache.
class QueryRecorder final : public KvCompressor {
 public:
  explicit QueryRecorder(int64_t layers) : q_(size_t(layers)) {}
  Support supports(const ModelConfig&) const override { return Support::yes(); }
  KvKeep after_step(const KvStep& s) const override {
    if (s.prefill()) q_[size_t(s.layer)].assign(s.q, s.q + s.n_new * s.num_heads * s.head_dim);
    return {};
  }
  const float* queries(int64_t layer) const { return q_[size_t(layer)].data(); }

 private:
  mutable std::vector<std::vector<float>> q_;  // one bench thread
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  for (size_t a = 0, b; a <= s.size(); a = b + 1) {
    b = std::min(s.find(',', a), s.size());
    out.push_back(s.substr(a, b - a));
  }
  return out;
}

std::string format_ratio(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", r);
  return buf;
}

}  // namespace

int bench_kv(const Args& args) {
  po::options_description desc("bench kv options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("lengths", po::value<std::string>()->default_value("4096,16384,32768"), "context lengths, comma-separated")
      ("keeps", po::value<std::string>()->default_value("0.25,0.5,0.75"), "keep_ratio values, comma-separated")
      ("plugins", po::value<std::string>()->default_value(""), "kv plugins, comma-separated (default: all)")
      ("extra", po::value<std::string>()->default_value("skip_layers=[]"),
       "parameters added to every compressor spec (default: compress every layer)")
      ("decode-tokens", po::value<int64_t>()->default_value(17), "decode steps after compression (median timed)")
      ("kv-quant", po::value<std::vector<std::string>>()->multitoken()->default_value({"kivi:bits=8", "kivi:bits=4"},
                                                                                 "kivi:bits=8 kivi:bits=4"),
       "KV quantization specs, one row each (repeat the option or list them; none: no rows)");
  add_attention_option(desc);
  po::variables_map vm;
  if (!parse_options("bench kv", "--model SPEC [options]", desc, args, vm)) return 0;
  const auto lengths = parse_size_list(vm["lengths"].as<std::string>(), "--lengths");
  std::vector<double> keeps;
  for (const std::string& k : split_commas(vm["keeps"].as<std::string>())) {
    size_t used = 0;
    double r = -1;
    try {
      r = std::stod(k, &used);
    } catch (const std::exception&) {
    }
    if (used != k.size() || !(r > 0 && r <= 1)) fail("--keeps: '", k, "' is not a ratio in (0, 1]");
    keeps.push_back(r);
  }
  std::vector<std::string> plugins = builtin_catalog().kv.names();
  if (!vm["plugins"].as<std::string>().empty()) plugins = split_commas(vm["plugins"].as<std::string>());
  for (const std::string& name : plugins) builtin_catalog().kv.get(name);  // unknown names fail before any work
  const int64_t D = vm["decode-tokens"].as<int64_t>();
  if (D < 1) fail("--decode-tokens must be >= 1");
  const std::string extra = vm["extra"].as<std::string>();
  std::vector<KvQuantConfig> quants;
  for (const std::string& spec : vm["kv-quant"].as<std::vector<std::string>>())
    if (KvQuantConfig q = resolve_kv_quant(builtin_catalog(), spec); q.enabled()) quants.push_back(q);

  auto model = load_model(vm["model"].as<std::string>());
  print_model_line(*model);
  const ModelConfig& c = model->config;
  const auto attention = make_attention(vm);
  std::printf("attention: %s | decode: median and min of %lld steps after one warm-up | spec extras: %s\n",
              vm["attention"].as<std::string>().c_str(), (long long)D - 1, extra.c_str());
  std::printf("\n| context | kv | keep | entries/layer | KV bytes held | vs none | compress ms | decode ms/token (median) | decode ms/token (min) |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t P : lengths) {
    if (P < 2) fail("--lengths entries must be >= 2");
    const auto prompt = synthetic_tokens(P + D, c.vocab_size);
    Transformer base(*model, attention);
    auto recorder = std::make_shared<QueryRecorder>(c.num_kv_layers());
    base.set_kv_compressor(recorder);
    KvCache prefilled = base.new_cache(P);
    SequenceStep pre{&prefilled, std::span<const int32_t>(prompt.data(), size_t(P)), -1};
    const double t0 = monotonic_seconds();
    base.forward({&pre, 1});
    std::fprintf(stderr, "context %lld: prefilled once in %.1f s; every row forks that cache\n", (long long)P,
                 monotonic_seconds() - t0);
    double none_bytes = 0;
    // Decodes D tokens over `cache` with tf and prints the row.
    auto row = [&](Transformer& tf, KvCache& cache, const std::string& kv, const std::string& keep, double prep_ms) {
      const double held = double(cache.bytes_reserved());
      if (kv == "none") none_bytes = held;
      int64_t entries = 0;
      for (int64_t l = 0; l < c.num_kv_layers(); ++l) entries += cache.length(l);
      std::vector<double> times;
      for (int64_t i = 0; i < D; ++i) {
        SequenceStep s{&cache, std::span<const int32_t>(&prompt[size_t(P + i)], 1), -1};
        const double s0 = monotonic_seconds();
        tf.forward({&s, 1});
        if (i > 0) times.push_back(monotonic_seconds() - s0);
      }
      std::printf("| %lld | %s | %s | %lld | %s | %s | %.1f | %.3f | %.3f |\n", (long long)P, kv.c_str(), keep.c_str(),
                  (long long)(entries / c.num_kv_layers()), human_bytes(held).c_str(),
                  none_bytes > 0 ? (format_ratio(double(int64_t(held / none_bytes * 1000 + 0.5)) / 1000) + "x").c_str() : "-",
                  prep_ms, median(times) * 1e3, *std::min_element(times.begin(), times.end()) * 1e3);
      std::fflush(stdout);
    };
    for (const std::string& name : plugins) {
      const std::vector<double> row_keeps = name == "none" ? std::vector<double>{1.0} : keeps;
      for (double keep : row_keeps) {
        const std::string spec =
            name == "none" ? name : name + ":keep_ratio=" + format_ratio(keep) + (extra.empty() ? "" : "," + extra);
        std::shared_ptr<const KvCompressor> comp = builtin_catalog().kv.create(spec);
        KvCache cache = prefilled.fork();
        const double c0 = monotonic_seconds();
        bool any = false;
        for (int64_t l = 0; l < c.num_kv_layers(); ++l)
          any |= compress_layer(*comp, c, l, recorder->queries(l), P, cache, P);
        if (any) cache.trim();
        const double compress_ms = (monotonic_seconds() - c0) * 1e3;
        Transformer tf(*model, attention);
        tf.set_kv_compressor(comp);
        row(tf, cache, name, name == "none" ? "1" : format_ratio(keep), compress_ms);
      }
    }
    for (const KvQuantConfig& q : quants) {
      Transformer tf(*model, attention);
      tf.set_kv_quantization(q);
      KvCache cache = prefilled.fork();
      cache.set_quantization(q);
      const double q0 = monotonic_seconds();
      for (int64_t l = 0; l < c.num_kv_layers(); ++l) cache.flush(l);
      row(tf, cache, q.spec, "1", (monotonic_seconds() - q0) * 1e3);
    }
  }
  return 0;
}

}  // namespace ctx::cli
