#include "experiments/runner/stored_trial.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "core/base/system_info.h"
#include "core/cuda/cuda_probe.h"
#include "experiments/runner/run_metrics.h"

namespace ctx::runner {

store::Environment current_environment() {
  store::Environment env;
  const BuildInfo b = build_info();
  env.git_commit = b.git_commit;
  env.compiler = b.compiler;
  env.cpu = host_info().cpu_model;
  const CudaReport cuda = probe_cuda();
  for (size_t i = 0; i < cuda.gpus.size(); ++i) env.gpu += (i ? "; " : "") + cuda.gpus[i].name;
  if (cuda.driver_version) env.driver = std::to_string(cuda.driver_version);
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) env.host = host;
  return env;
}

// The label keeps plugin names only (trial_engine.h's plugin_name); the full specs are in the run's
// params.
std::string trial_label(const TrialConfig& t) {
  std::string s = plugin_name(t.attention);
  for (const auto* spec : {&t.kv, &t.kv_quant, &t.quant})
    if (plugin_name(*spec) != "none") s += " + " + plugin_name(*spec);
  return s + ", ctx " + std::to_string(t.context_length) + ", batch " + std::to_string(t.batch_size);
}

StoredTrialResult run_stored_trial(store::RunStore& store, int64_t experiment_id, TrialRunner& runner,
                                   const TrialConfig& trial, int64_t trial_count, Progress& progress,
                                   const StoredTrialOptions& options) {
  StoredTrialResult result;
  std::set<std::pair<std::string, std::string>> done;
  if (options.resume_run) {
    result.run_id = *options.resume_run;
    for (const auto& key : store.example_keys(result.run_id)) done.insert(key);
  } else {
    store::RunRecord run;
    run.experiment_id = experiment_id;
    run.trial_index = trial.index;
    run.config = trial.canonical();
    run.config_hash = store::hash_hex(run.config);
    run.env = current_environment();
    run.seed = trial.seed;
    run.rerun_of = options.rerun_of;
    run.params = trial.params();
    result.run_id = store.begin_run(run);
  }
  progress.trial_started(trial.index, trial_count, trial_label(trial));
  static int64_t committed = 0;  // examples committed by this process, for abort_after_examples
  result.outcome = runner.run(
      trial, done,
      [&](const store::ExampleRecord& ex) {
        store.add_example(result.run_id, ex);
        if (options.abort_after_examples > 0 && ++committed == options.abort_after_examples) {
          std::fflush(nullptr);
          ::_exit(137);
        }
      },
      [&](const TrialProgress& p) { progress.examples(p); });
  const auto examples = store.examples(result.run_id);
  const auto metrics = run_metrics(examples, trial.batch_size, result.outcome.weight_bytes);
  store.finish_run(result.run_id, result.outcome.status, result.outcome.message, metrics);
  std::string summary = result.outcome.message;
  if (result.outcome.status == "ok") {
    char buf[160];
    double quality = NAN, latency = NAN;
    for (const auto& m : metrics) {
      if (m.scope.empty() && m.name == "quality") quality = m.value;
      if (m.scope.empty() && m.name == "latency_ms_p50") latency = m.value;
    }
    std::snprintf(buf, sizeof buf, "run %lld, %zu examples, quality %.2f, latency p50 %.1f ms", (long long)result.run_id,
                  examples.size(), quality, latency);
    summary = buf;
  }
  progress.trial_finished(result.outcome.status, summary);
  return result;
}

}  // namespace ctx::runner
