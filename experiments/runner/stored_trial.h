// Runs trials into the run store: a run row per trial (status running), one committed row per
// finished example, then the run's status and metrics (run_metrics.h). Shared by `ctxlab run`,
// `ctxlab run --resume` and `ctxlab rerun`. Not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "experiments/runner/progress.h"
#include "experiments/runner/trial_runner.h"
#include "experiments/store/run_store.h"

namespace ctx::runner {

// This build and host: git commit, compiler, CPU, GPU and driver (when CUDA is present), host name.
store::Environment current_environment();

struct StoredTrialOptions {
  std::optional<int64_t> resume_run;  // continue this run: its stored examples are not run again
  std::optional<int64_t> rerun_of;
  // Testing aid for "a kill loses at most the example in flight": _exit(137) right after the N-th
  // example of this process is committed (0 = never).
  int64_t abort_after_examples = 0;
};

struct StoredTrialResult {
  int64_t run_id = 0;
  TrialOutcome outcome;
};

StoredTrialResult run_stored_trial(store::RunStore& store, int64_t experiment_id, TrialRunner& runner,
                                   const TrialConfig& trial, int64_t trial_count, Progress& progress,
                                   const StoredTrialOptions& options);

// "sdpa + l2norm{keep_ratio=0.5} + int8, ctx 512, batch 1": a trial's short label for progress lines.
std::string trial_label(const TrialConfig& trial);

}  // namespace ctx::runner
