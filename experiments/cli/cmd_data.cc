// ctxlab data list | show | count: inspect dataset plugins. `show` prints the exact prompts (and
// references, scoring mode, metric, truncation) of the first --limit samples of a dataset spec, as
// text or JSON Lines; `count` loads the whole dataset and prints sample and skip counts by group.
#include <cstdio>
#include <iostream>
#include <map>

#include "core/base/error.h"
#include "core/plugin/catalog.h"
#include "datasets/dataset.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "plugins/register_all.h"

namespace ctx::cli {
namespace {

// `spec` with max_tokens=N added (a spec that already sets it is rejected by the registry as given twice).
std::string with_max_tokens(std::string spec, int64_t n) {
  const std::string arg = "max_tokens=" + std::to_string(n);
  if (!spec.empty() && spec.back() == '}') return spec.insert(spec.size() - 1, spec[spec.size() - 2] == '{' ? arg : "," + arg);
  return spec + (spec.find(':') == std::string::npos ? ":" : ",") + arg;
}

nlohmann::json sample_json(const Sample& s) {
  nlohmann::json j = {{"id", s.id},
                      {"prompt", s.prompt},
                      {"references", s.references},
                      {"scoring", s.scoring},
                      {"metric", s.metric},
                      {"max_new_tokens", s.max_new_tokens},
                      {"meta", s.meta},
                      {"source", s.source},
                      {"truncation",
                       {{"original_tokens", s.truncation.original_tokens},
                        {"kept_tokens", s.truncation.kept_tokens},
                        {"cut_tokens", s.truncation.cut_tokens}}}};
  if (!s.choices.empty()) j["choices"] = s.choices;
  if (!s.continuations.empty()) j["continuations"] = s.continuations, j["gold_index"] = s.gold_index;
  if (!s.extraction.empty()) j["extraction"] = s.extraction;
  if (!s.metric_options.is_null()) j["metric_options"] = s.metric_options;
  return j;
}

void print_sample(size_t i, const Sample& s) {
  std::printf("=== sample %zu: %s (%s)\n", i, s.id.c_str(), s.source.c_str());
  std::printf("scoring: %s   metric: %s   max_new_tokens: %lld%s%s\n", s.scoring.c_str(), s.metric.c_str(),
              (long long)s.max_new_tokens, s.extraction.empty() ? "" : "   extraction: ", s.extraction.c_str());
  for (const auto& [k, v] : s.meta) std::printf("meta %s: %s\n", k.c_str(), v.c_str());
  for (size_t r = 0; r < s.references.size(); ++r) std::printf("reference %zu: %s\n", r, s.references[r].c_str());
  if (!s.continuations.empty()) {
    std::printf("continuations:");
    for (const auto& c : s.continuations) std::printf(" '%s'", c.c_str());
    std::printf("   gold: %lld\n", (long long)s.gold_index);
  }
  if (s.truncation.original_tokens >= 0)
    std::printf("tokens: %lld -> %lld (cut %lld)\n", (long long)s.truncation.original_tokens,
                (long long)s.truncation.kept_tokens, (long long)s.truncation.cut_tokens);
  std::printf("--- prompt ---\n%s\n--- end ---\n", s.prompt.c_str());
}

}  // namespace

int cmd_data(const Args& args) {
  po::options_description desc("data options");
  desc.add_options()("action", po::value<std::string>()->required(), "list | show | count")(
      "dataset", po::value<std::string>(), "dataset spec, e.g. 'mmlu:subjects=[anatomy],shots=5' (see ctxlab data list)")(
      "limit", po::value<int64_t>()->default_value(3), "show: samples to print")(
      "tokenizer", po::value<std::string>(), "tokenizer.model or tokenizer.bin, for token counts and --max-tokens")(
      "vocab-size", po::value<int32_t>()->default_value(0), "vocab size of a llama2.c tokenizer.bin")(
      "max-tokens", po::value<int64_t>(), "prompt budget in tokens (LongBench middle truncation)")(
      "json", po::bool_switch(), "show: one JSON object per sample");
  po::positional_options_description pos;
  pos.add("action", 1);
  po::variables_map vm;
  if (!parse_options("data", "list | show --dataset SPEC [--limit N] | count --dataset SPEC", desc, args, vm, &pos))
    return 0;
  const Catalog& catalog = builtin_catalog();
  const std::string action = vm["action"].as<std::string>();
  if (action == "list") {
    std::printf("%s", catalog.dataset.describe().c_str());
    return 0;
  }
  if (action != "show" && action != "count") fail("unknown data action '", action, "' (list, show, count)");
  if (!vm.count("dataset")) fail("ctxlab data ", action, " needs --dataset SPEC");
  std::string spec = vm["dataset"].as<std::string>();
  if (vm.count("max-tokens")) spec = with_max_tokens(spec, vm["max-tokens"].as<int64_t>());
  std::unique_ptr<Tokenizer> tokenizer;
  if (vm.count("tokenizer")) tokenizer = load_tokenizer(vm["tokenizer"].as<std::string>(), vm["vocab-size"].as<int32_t>());
  const PluginSpec resolved = catalog.dataset.resolve(spec);
  const auto dataset = catalog.dataset.create(resolved);
  LoadOptions options;
  options.tokenizer = tokenizer.get();
  const LoadedDataset data = dataset->load(options);
  if (action == "count") {
    std::printf("dataset: %s\nsamples: %zu\nskipped: %zu\n", resolved.canonical().c_str(), data.samples.size(),
                data.skipped.size());
    std::map<std::string, size_t> groups;
    for (const auto& s : data.samples)
      for (const char* key : {"subject", "type", "difficulty", "length", "set"})
        if (auto it = s.meta.find(key); it != s.meta.end()) ++groups[std::string(key) + "=" + it->second];
    for (const auto& [g, n] : groups) std::printf("  %s: %zu\n", g.c_str(), n);
  } else {
    const size_t n = std::min<size_t>(data.samples.size(), size_t(std::max<int64_t>(0, vm["limit"].as<int64_t>())));
    if (!vm["json"].as<bool>()) std::printf("dataset: %s (%zu samples)\n", resolved.canonical().c_str(), data.samples.size());
    for (size_t i = 0; i < n; ++i) {
      if (vm["json"].as<bool>()) std::printf("%s\n", sample_json(data.samples[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      else print_sample(i, data.samples[i]);
    }
  }
  for (const auto& why : data.skipped) std::cerr << "skipped: " << why << "\n";
  return 0;
}

}  // namespace ctx::cli
