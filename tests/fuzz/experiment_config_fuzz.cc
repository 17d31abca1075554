// libFuzzer target for experiment configs (experiments/runner/experiment_config.h). The input is
// "CONFIG" or "CONFIG\n%%\nOVERRIDES": the config part is read as JSON when it starts with '{', else
// as INI; each override line is a `--set KEY=VALUE`. A rejected input must throw ctx::Error (or a
// Boost.PropertyTree parser error before our code runs); an accepted one must keep the contract: the
// grid has exactly |quant| x |attention| x |kv| x |kv_quant| x |contexts| x |batches| trials, indexed
// in order, and each trial's canonical config parses back (TrialConfig::from_json) to the same text.
// Models are only checked for existence, so seeds use `random:` models (not loaded here).
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/json_parser.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "core/base/error.h"
#include "experiments/runner/experiment_config.h"
#include "plugins/register_all.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t sep = input.find("\n%%\n");
  const std::string config = input.substr(0, sep);
  std::vector<std::string> overrides;
  if (sep != std::string::npos) {
    std::istringstream lines(input.substr(sep + 4));
    for (std::string line; std::getline(lines, line);)
      if (!line.empty()) overrides.push_back(line);
  }
  boost::property_tree::ptree tree;
  try {
    std::istringstream in(config);
    if (!config.empty() && config[0] == '{') {
      boost::property_tree::read_json(in, tree);
    } else {
      boost::property_tree::read_ini(in, tree);
    }
  } catch (const boost::property_tree::file_parser_error&) {
    return 0;  // not our parser
  }
  try {
    for (const auto& o : overrides) ctx::runner::apply_override(tree, o, "fuzz");
    const auto c = ctx::runner::parse_experiment_config(tree, "fuzz", ctx::builtin_catalog());
    const size_t expected = c.quant.size() * c.attention.size() * c.kv.size() * c.kv_quant.size() *
                            c.context_lengths.size() * c.batch_sizes.size();
    if (c.trials.size() != expected) {
      std::fprintf(stderr, "grid of %zu trials, expected %zu\n", c.trials.size(), expected);
      std::abort();
    }
    for (size_t i = 0; i < c.trials.size(); ++i) {
      const auto& t = c.trials[i];
      const std::string text = t.canonical();
      if (t.index != int64_t(i) ||
          ctx::runner::TrialConfig::from_json(nlohmann::json::parse(text), "fuzz").canonical() != text) {
        std::fprintf(stderr, "trial %zu does not round-trip: %s\n", i, text.c_str());
        std::abort();
      }
    }
  } catch (const ctx::Error&) {
  }
  return 0;
}
