// ctxlab bench quant: the weight quantizers against float32, measured in the same run.
//   matvec: one input row (decode) times a quantized matrix, GB/s of the packed bytes (bytes() / time),
//           for a large square matrix and the model's own linear shapes; float32 (linear()) alongside
//   model:  whole-model decode tok/s for each format (default list: every format, plus q4_0 and nf4 with
//           lm_head=true, int8/nf4/fp4 with activations=q8_0), formats interleaved within each round (shared
//           machines drift), ratio vs float32 taken per round; medians reported
// Results print as Markdown table rows (the format of bench/RESULTS.md).
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/threads.h"
#include "core/cpu/linear.h"
#include "core/instruments/clock.h"
#include "core/model/transformer.h"
#include "experiments/cli/bench_common.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "plugins/register_all.h"

namespace ctx::cli {
namespace {

std::vector<std::string> split_list(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(sep, pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// Median seconds of one call of f() over `calls` calls (after one warm-up call).
template <class F>
double time_calls(F&& f, int calls) {
  f();
  std::vector<double> t;
  for (int i = 0; i < calls; ++i) {
    const double t0 = monotonic_seconds();
    f();
    t.push_back(monotonic_seconds() - t0);
  }
  return median(t);
}

struct Shape {
  std::string name;
  int64_t rows, cols;
};

void bench_matvec(const std::vector<std::string>& specs, const std::vector<Shape>& shapes, int rounds, int calls) {
  const auto& registry = builtin_catalog().quant;
  std::printf("\nmatvec (n = 1), median over %d rounds of the median of %d calls; GB/s = bytes held / time\n\n", rounds, calls);
  std::printf("| shape | format | bytes | bits/weight | us | GB/s | time / float32 |\n|---|---|---|---|---|---|---|\n");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (const Shape& s : shapes) {
    std::vector<float> w(size_t(s.rows * s.cols)), x(size_t(s.cols)), y(size_t(s.rows));
    for (float& v : w) v = normal(rng);
    for (float& v : x) v = normal(rng) * 50.0f;
    const WeightMatrix fw{w.data(), s.rows, s.cols, nullptr};
    std::vector<WeightMatrix> mats;
    for (const std::string& spec : specs) {
      WeightMatrix m = fw;
      m.quant = registry.create(spec)->quantize(fw);
      mats.push_back(m);
    }
    std::vector<std::vector<double>> sec(specs.size()), ratio(specs.size());
    std::vector<double> base_sec;
    for (int r = 0; r < rounds; ++r) {
      const double base = time_calls([&] { linear(fw, x.data(), 1, y.data()); }, calls);
      base_sec.push_back(base);
      for (size_t i = 0; i < specs.size(); ++i) {
        const double t = time_calls([&] { linear(mats[i], x.data(), 1, y.data()); }, calls);
        sec[i].push_back(t);
        ratio[i].push_back(t / base);
      }
    }
    const std::string shape = s.name + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols);
    const double fb = double(s.rows * s.cols * 4), ft = median(base_sec);
    std::printf("| %s | float32 | %s | 32 | %.1f | %.2f | 1.00 |\n", shape.c_str(), human_bytes(fb).c_str(), ft * 1e6, fb / ft / 1e9);
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& q = *mats[i].quant;
      const double t = median(sec[i]);
      std::printf("| %s | %s | %s | %.3f | %.1f | %.2f | %.2f |\n", shape.c_str(), specs[i].c_str(),
                  human_bytes(double(q.bytes())).c_str(), q.bits_per_weight(), t * 1e6, double(q.bytes()) / t / 1e9,
                  median(ratio[i]));
    }
    std::fflush(stdout);
  }
}

struct DecodeRun {
  std::string spec;
  std::unique_ptr<Model> model;
  std::unique_ptr<Transformer> tf;
  std::unique_ptr<KvCache> cache;
  int32_t tok = 0;
};

void bench_model(const std::string& model_spec, const std::vector<std::string>& specs, int64_t prompt_tokens, int64_t tokens,
                 int rounds, const po::variables_map& vm) {
  std::vector<DecodeRun> runs;
  std::vector<std::string> all = {"none"};
  all.insert(all.end(), specs.begin(), specs.end());
  for (const std::string& spec : all) {
    DecodeRun d;
    d.spec = spec;
    d.model = load_model(model_spec);
    apply_quant(spec, *d.model);
    d.tf = std::make_unique<Transformer>(*d.model, make_attention(vm));
    d.cache = std::make_unique<KvCache>(d.tf->new_cache(prompt_tokens + 4 + tokens * rounds));
    const auto prompt = synthetic_tokens(prompt_tokens, d.model->config.vocab_size);
    SequenceStep s{d.cache.get(), prompt, -1};
    d.tf->forward({&s, 1});
    d.tok = prompt.back();
    runs.push_back(std::move(d));
  }
  auto step = [](DecodeRun& d) {
    SequenceStep s{d.cache.get(), std::span<const int32_t>(&d.tok, 1), -1};
    d.tf->forward({&s, 1});
  };
  for (auto& d : runs)
    for (int i = 0; i < 3; ++i) step(d);  // warm-up
  std::vector<std::vector<double>> tps(runs.size()), ratio(runs.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < runs.size(); ++i) {
      std::vector<double> t;
      for (int64_t k = 0; k < tokens; ++k) {
        const double t0 = monotonic_seconds();
        step(runs[i]);
        t.push_back(monotonic_seconds() - t0);
      }
      tps[i].push_back(1.0 / median(t));
    }
    for (size_t i = 0; i < runs.size(); ++i) ratio[i].push_back(tps[i].back() / tps[0].back());
  }
  const ModelConfig& c = runs[0].model->config;
  std::printf("\nwhole-model decode: %s | %s | threads %d | %lld prompt tokens, %d rounds of %lld steps, formats interleaved "
              "per round; tok/s = 1 / median step time; ratio = median of per-round tok/s / float32 tok/s\n"
              "embedding float32; lm_head float32 (as bitsandbytes) unless lm_head=true (as llama.cpp); bits/weight over the "
              "decoder linear layers\n\n",
              model_spec.c_str(), c.summary().c_str(), num_threads(), (long long)prompt_tokens, rounds, (long long)tokens);
  std::printf("| format | weights held | bytes/token | linear bits/weight | tok/s | ms/token | speed-up vs float32 |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < runs.size(); ++i) {
    const ModelWeights& w = runs[i].model->weights;
    double qbytes = 0, params = 0;
    for (const auto& l : w.layers)
      for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
        qbytes += double(m->bytes());
        params += double(m->rows * m->cols);
      }
    const double t = median(tps[i]);
    std::printf("| %s | %s | %s | %.3f | %.2f | %.2f | **%.2f** |\n", runs[i].spec.c_str(), human_bytes(double(w.bytes_held())).c_str(),
                human_bytes(double(w.bytes_read_per_token())).c_str(), qbytes * 8 / params, t, 1e3 / t, median(ratio[i]));
  }
}

}  // namespace

int bench_quant(const Args& args) {
  po::options_description desc("bench quant options");
  desc.add_options()
      ("model", po::value<std::string>()->default_value("random:bench/configs/llama_110m.json"),
       "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("formats", po::value<std::string>()->default_value(""),
       "quantizer specs separated by ';' (e.g. \"int8;nf4:double_quant=true\"); default: every registered one but none, "
       "plus q4_0:lm_head=true, nf4:lm_head=true, int8/nf4/fp4:activations=q8_0 and nf4:activations=q8_0,lm_head=true")
      ("matrix", po::value<std::string>()->default_value("4096x4096"), "extra matvec shapes ROWSxCOLS, comma-separated (empty: none)")
      ("prompt-tokens", po::value<int64_t>()->default_value(16), "context before the timed decode steps")
      ("tokens", po::value<int64_t>()->default_value(16), "timed decode steps per round and format")
      ("rounds", po::value<int>()->default_value(5), "rounds (formats interleaved within each)")
      ("calls", po::value<int>()->default_value(20), "matvec calls per round (median per round)")
      ("skip-matvec", po::bool_switch(), "only the whole-model decode table")
      ("skip-model", po::bool_switch(), "only the matvec table");
  add_attention_option(desc);
  po::variables_map vm;
  if (!parse_options("bench quant", "[options]", desc, args, vm)) return 0;
  const int rounds = vm["rounds"].as<int>(), calls = vm["calls"].as<int>();
  const int64_t P = vm["prompt-tokens"].as<int64_t>(), N = vm["tokens"].as<int64_t>();
  if (rounds < 1 || calls < 1 || P < 1 || N < 1) fail("--rounds, --calls, --prompt-tokens and --tokens must be >= 1");
  const auto& registry = builtin_catalog().quant;
  std::vector<std::string> specs;
  const std::string list = vm["formats"].as<std::string>();
  std::vector<std::string> names = registry.names();
  // The llama.cpp-style variants of the targets: quantized classifier, int8 activations (q8_kernels.h).
  for (const char* s : {"q4_0:lm_head=true", "nf4:lm_head=true", "int8:activations=q8_0", "nf4:activations=q8_0",
                        "fp4:activations=q8_0", "nf4:activations=q8_0,lm_head=true"})
    if (registry.find(std::string_view(s).substr(0, std::string_view(s).find(':')))) names.push_back(s);
  for (const std::string& s : list.empty() ? names : split_list(list, ';'))
    if (s != "none") specs.push_back(registry.resolve(s).canonical());
  const std::string model_spec = vm["model"].as<std::string>();

  if (!vm["skip-matvec"].as<bool>()) {
    std::vector<Shape> shapes;
    for (const std::string& m : split_list(vm["matrix"].as<std::string>(), ',')) {
      const size_t x = m.find('x');
      const auto dims = x == std::string::npos ? std::vector<int64_t>{} : parse_size_list(m.substr(0, x) + "," + m.substr(x + 1), "--matrix");
      if (dims.size() != 2 || dims[0] < 1 || dims[1] < 1) fail("--matrix: '", m, "' is not ROWSxCOLS (e.g. 4096x4096)");
      shapes.push_back({"square", dims[0], dims[1]});
    }
    const auto model = load_model(model_spec);
    const ModelConfig& c = model->config;
    shapes.push_back({"q_proj", c.q_dim(), c.hidden_size});
    shapes.push_back({"up_proj", c.intermediate_size, c.hidden_size});
    shapes.push_back({"down_proj", c.hidden_size, c.intermediate_size});
    std::printf("threads %d | formats: %zu | model shapes from %s\n", num_threads(), specs.size(), model_spec.c_str());
    bench_matvec(specs, shapes, rounds, calls);
  }
  if (!vm["skip-model"].as<bool>()) bench_model(model_spec, specs, P, N, rounds, vm);
  return 0;
}

}  // namespace ctx::cli
