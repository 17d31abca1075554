// ctxlab rerun: re-executes a stored run from its canonical config and reports, per metric and per
// example, whether the results are identical (timings and memory are shown, not compared).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "experiments/runner/run_metrics.h"
#include "experiments/runner/stored_trial.h"
#include "plugins/register_all.h"

namespace ctx::cli {

int cmd_rerun(const Args& args) {
  po::options_description desc("rerun options");
  desc.add_options()("run", po::value<int64_t>()->required(), "run id (see ctxlab ls)")(
      "db", po::value<std::string>()->default_value("ctxlab.db"), "run store (SQLite file)");
  po::positional_options_description pos;
  pos.add("run", 1);
  po::variables_map vm;
  if (!parse_options("rerun", "RUN [--db FILE]", desc, args, vm, &pos)) return 0;
  const std::string path = vm["db"].as<std::string>();
  if (!std::ifstream(path)) fail(path, ": no such run store");
  store::RunStore store(path);
  const auto old = store.get_run(vm["run"].as<int64_t>());
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(old.config);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": run ", old.id, ": stored config is not JSON: ", e.what());
  }
  auto trial = runner::TrialConfig::from_json(config, str_cat(path, ": run ", old.id));
  trial.index = old.trial_index;
  if (trial.canonical() != old.config)
    fail(path, ": run ", old.id, ": stored config is not in canonical form (was it edited?)");

  runner::TrialRunner runner(builtin_catalog());
  runner::Progress progress(stderr, ::isatty(::fileno(stderr)));
  runner::StoredTrialOptions options;
  options.rerun_of = old.id;
  const auto fresh = runner::run_stored_trial(store, old.experiment_id, runner, trial, trial.index + 1, progress, options);

  bool identical = fresh.outcome.status == old.status;
  std::printf("rerun of run %lld -> run %lld: status %s -> %s\n", (long long)old.id, (long long)fresh.run_id,
              old.status.c_str(), fresh.outcome.status.c_str());
  // Metrics.
  std::map<std::pair<std::string, std::string>, double> before, after;
  for (const auto& m : store.metrics(old.id)) before[{m.scope, m.name}] = m.value;
  for (const auto& m : store.metrics(fresh.run_id)) after[{m.scope, m.name}] = m.value;
  int64_t same = 0, differ = 0;
  std::printf("\n%-14s %-26s %14s %14s  %s\n", "scope", "metric", "stored", "rerun", "result");
  auto key_set = before;
  for (const auto& [k, v] : after) key_set.emplace(k, v);
  for (const auto& [key, unused] : key_set) {
    const auto& [scope, name] = key;
    const auto b = before.find(key);
    const auto a = after.find(key);
    const double bv = b == before.end() ? NAN : b->second;
    const double av = a == after.end() ? NAN : a->second;
    const bool measured = runner::is_measurement_metric(name);
    const bool equal = b != before.end() && a != after.end() && (bv == av || (std::isnan(bv) && std::isnan(av)));
    if (!measured) equal ? ++same : ++differ;
    std::printf("%-14s %-26s %14.6g %14.6g  %s\n", scope.empty() ? "(run)" : scope.substr(0, 14).c_str(), name.c_str(), bv, av,
                measured ? "measured (not compared)" : equal ? "identical" : "DIFFERENT");
  }
  identical = identical && differ == 0;
  // Examples.
  std::map<std::pair<std::string, std::string>, store::ExampleRecord> stored;
  for (auto& e : store.examples(old.id)) stored[{e.dataset, e.example_id}] = e;
  int64_t ex_same = 0, ex_differ = 0, ex_missing = 0;
  const auto rerun_examples = store.examples(fresh.run_id);
  for (const auto& e : rerun_examples) {
    const auto it = stored.find({e.dataset, e.example_id});
    if (it == stored.end()) {
      ++ex_missing;
      continue;
    }
    const auto& o = it->second;
    const bool eq = o.prediction == e.prediction && o.scores == e.scores && o.prompt_hash == e.prompt_hash &&
                    o.new_tokens == e.new_tokens && o.references == e.references;
    if (eq) {
      ++ex_same;
    } else {
      ++ex_differ;
      std::printf("example %s/%s differs: stored %s | rerun %s\n", e.dataset.c_str(), e.example_id.c_str(),
                  nlohmann::json(o.prediction).dump().substr(0, 80).c_str(), nlohmann::json(e.prediction).dump().substr(0, 80).c_str());
    }
  }
  ex_missing += int64_t(stored.size()) - ex_same - ex_differ;
  identical = identical && ex_differ == 0 && ex_missing == 0;
  std::printf("\nmetrics: %lld identical, %lld different; examples: %lld identical, %lld different, %lld in one run only\n",
              (long long)same, (long long)differ, (long long)ex_same, (long long)ex_differ, (long long)ex_missing);
  std::printf("%s\n", identical ? "IDENTICAL: the rerun reproduced every stored answer, score and quality metric"
                                : "DIFFERENT: the rerun did not reproduce the stored results");
  return identical ? 0 : 1;
}

}  // namespace ctx::cli
