// ctxlab score: scores a JSON Lines file of cases ({"id", "prediction", "references", "options"},
// the layout of shared/golden/metrics/*.jsonl) with one registered metric and writes one line
// {"id": ..., "scores": {...}} per case, keys as the golden files' "expected".
// ctxlab score --bench: times every metric on generated pairs of texts (one thread).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "core/base/error.h"
#include "eval/metric_cases.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "plugins/register_all.h"

namespace ctx::cli {
namespace {

// Pairs of `words`-word texts over the words of `vocab_file` (or a small built-in list): a reference
// with a sentence break every 12..24 words, and a prediction that drops, replaces and swaps ~20% of it.
std::vector<std::pair<std::string, std::string>> bench_pairs(size_t pairs, size_t words, const std::string& vocab_file) {
  std::vector<std::string> vocab;
  if (!vocab_file.empty()) {
    for (const auto& c : read_metric_cases(vocab_file)) {
      std::istringstream in(c.references.empty() ? c.prediction : c.references[0]);
      for (std::string w; in >> w;) vocab.push_back(w);
    }
  }
  if (vocab.size() < 100) {
    std::istringstream in(
        "the a police said on thursday that three people were killed and others wounded in a shooting at the "
        "distribution center of a company near the city where officials began an investigation into the motive "
        "of the suspect who died later of a self inflicted wound according to reports from local news outlets and "
        "witnesses described scenes of panic as employees fled the building while deputies arrived within minutes "
        "running quickly through parking lots searching for cover under heavy rain");
    for (std::string w; in >> w;) vocab.push_back(w);
  }
  std::mt19937_64 rng(42);
  auto pick = [&] { return vocab[rng() % vocab.size()]; };
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t p = 0; p < pairs; ++p) {
    std::vector<std::string> ref;
    for (size_t i = 0; i < words; ++i) ref.push_back(pick());
    std::vector<std::string> pred = ref;
    for (size_t i = 0; i < pred.size(); ++i) {
      const auto r = rng() % 20;
      if (r == 0) pred[i] = pick();
      else if (r == 1 && i + 1 < pred.size()) std::swap(pred[i], pred[i + 1]);
    }
    auto join = [&](const std::vector<std::string>& ws) {
      std::string s;
      size_t next_break = 12 + rng() % 13;
      for (size_t i = 0; i < ws.size(); ++i) {
        s += ws[i];
        if (i + 1 == next_break) {
          s += ".\n";
          next_break += 12 + rng() % 13;
        } else if (i + 1 < ws.size()) {
          s += ' ';
        }
      }
      return s;
    };
    out.emplace_back(join(pred), join(ref));
  }
  return out;
}

int run_bench(size_t pairs, size_t words, const std::string& vocab_file) {
  const auto data = bench_pairs(pairs, words, vocab_file);
  struct Row {
    const char* metric;
    const char* options;
  };
  const Row rows[] = {{"squad_em_f1", "null"},
                      {"hotpot_em_f1", "null"},
                      {"rouge", R"({"use_stemmer": false})"},
                      {"rouge", R"({"use_stemmer": true})"},
                      {"meteor", "null"},
                      {"longbench", R"({"metric": "qa_f1_score"})"},
                      {"longbench", R"({"metric": "rouge_score"})"},
                      {"longbench", R"({"metric": "count_score"})"},
                      {"longbench", R"({"metric": "code_sim_score"})"},
                      {"rougeL", "null"},
                      {"bleu", R"({"n": 1})"},
                      {"bleu", R"({"n": 4})"},
                      {"longbench_v2", "null"},
                      {"mmlu", "null"}};
  std::printf(
      "%zu pairs of %zu-word texts, one thread (wall clock and this thread's CPU time)\n"
      "| metric | options | total s | CPU s | us/pair |\n|---|---|---|---|---|\n",
      pairs, words);
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  for (const Row& row : rows) {
    const auto metric = builtin_catalog().metric.create(row.metric);
    const auto options = nlohmann::json::parse(row.options);
    metric->scores(data[0].first, {data[0].second}, options);  // loads WordNet outside the timing
    double sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_now();
    for (const auto& [pred, ref] : data) sink += metric->scores(pred, {ref}, options)[0].second;
    const double cpu = cpu_now() - c0;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("| %s | `%s` | %.3f | %.3f | %.1f |\n", row.metric, row.options, s, cpu, 1e6 * s / double(pairs));
    if (sink < 0) std::printf("impossible\n");
  }
  return 0;
}

}  // namespace

int cmd_score(const Args& args) {
  po::options_description desc("score options");
  desc.add_options()
      ("metric", po::value<std::string>(), "metric plugin: rouge, rougeL, meteor, bleu, squad_em_f1, longbench, qa_f1_score, longbench_v2, mmlu, ... (see ctxlab plugins metric)")
      ("input", po::value<std::string>(), "cases, JSON Lines {\"id\", \"prediction\", \"references\", \"options\"}")
      ("output", po::value<std::string>(), "write the score lines here instead of stdout")
      ("bench", po::bool_switch(), "time every metric on generated text pairs instead (one thread)")
      ("pairs", po::value<int64_t>()->default_value(10000), "--bench: number of pairs")
      ("words", po::value<int64_t>()->default_value(200), "--bench: words per text");
  po::variables_map vm;
  if (!parse_options("score", "--metric NAME --input CASES.jsonl [--output FILE] | --bench [--input VOCAB.jsonl]", desc,
                     args, vm))
    return 0;
  const std::string input = vm.count("input") ? vm["input"].as<std::string>() : "";
  if (vm["bench"].as<bool>()) {
    if (vm["pairs"].as<int64_t>() < 1 || vm["words"].as<int64_t>() < 1) fail("--pairs and --words must be >= 1");
    return run_bench(size_t(vm["pairs"].as<int64_t>()), size_t(vm["words"].as<int64_t>()), input);
  }
  if (!vm.count("metric") || input.empty()) fail("give --metric NAME and --input CASES.jsonl");
  const auto metric = builtin_catalog().metric.create(vm["metric"].as<std::string>());
  const auto cases = read_metric_cases(input);
  std::ofstream file;
  if (vm.count("output")) {
    file.open(vm["output"].as<std::string>(), std::ios::binary);
    if (!file) fail("cannot write '", vm["output"].as<std::string>(), "'");
  }
  std::ostream& out = vm.count("output") ? static_cast<std::ostream&>(file) : std::cout;
  for (const auto& c : cases) {
    Scores s;
    try {
      s = metric->scores(c.prediction, c.references, c.options);
    } catch (const Error& e) {
      fail(input, ":", c.line, " (id '", c.id, "'): ", e.what());
    }
    out << format_score_line(c.id, s) << '\n';
  }
  out.flush();
  if (!out) fail("error writing the scores");
  return 0;
}

}  // namespace ctx::cli
