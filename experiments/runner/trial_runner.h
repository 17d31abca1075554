// Runs one trial of an experiment (experiment_config.h) on its device's engine (trial_engine.h):
// loads the model (cached
// across trials, quantized per the trial's quant spec), the datasets (cached by spec), runs every
// example with the trial's attention backend, KV compressor and KV quantization, scores it, and hands
// each finished example to a callback (the run store commits it at once).
//
// With trial.max_batches = N > 0 only each dataset's first N * batch_size samples run.
// Per example: greedy generation (or, for log-likelihood samples such as MMLU, the log-likelihood of
// each choice) in batches of `batch_size` samples of one dataset; `repetitions` timed runs, answers
// from the first, timings the median; ttft_ms = prefill of the batch, latency_ms = the whole batch,
// decode_ms_per_token = per batched step, peak_host_bytes = the process's peak RSS during the batch
// (reset before it), peak_device_bytes = the GPU engine's allocator peak during it (device cuda),
// kv_bytes = peak KV bytes reserved by the batch.
// Scores: the sample's metric plugin (eval/), aggregate keys only, plus "quality" = the metric's
// headline key x 100 (headline_key()); "accuracy" samples are scored here (chosen letter == gold).
//
// Outcome: ok; oom (std::bad_alloc, CUDA out of memory, peak host memory above memory_limit_mb on
// the CPU, device memory above it on cuda); unsupported
// (ctx::Unsupported: a plugin cannot run this model, or a device/dtype this build lacks); failed
// (any other ctx::Error), with the message. Examples finished before the end are kept.
// Not thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/model/model_loader.h"
#include "core/plugin/catalog.h"
#include "core/tokenizer/tokenizer.h"
#include "datasets/dataset.h"
#include "experiments/runner/experiment_config.h"
#include "experiments/runner/trial_engine.h"
#include "experiments/store/run_store.h"
#include "eval/metric.h"

namespace ctx::runner {

struct TrialProgress {
  int64_t examples_done = 0, examples_total = 0;
  double new_tokens_per_s = 0;  // generated tokens per second of wall time so far
  double elapsed_s = 0;
};

struct TrialOutcome {
  std::string status = "ok";  // ok | oom | unsupported | failed
  std::string message;
  int64_t weight_bytes = 0;
  int64_t examples_run = 0;
};

// The score key a metric plugin's results are summarised by ("rougeL_fmeasure" for rouge, "em" for
// hotpot_em_f1, "score" for longbench, ...): the first of its score_keys() unless listed otherwise.
std::string headline_key(const std::string& metric_name, const std::vector<std::string>& score_keys);

class TrialRunner {
 public:
  explicit TrialRunner(const Catalog& catalog);
  ~TrialRunner();

  // The samples of dataset `spec` with the tokenizer of `trial`'s model (cached).
  const std::vector<Sample>& samples(const TrialConfig& trial, const std::string& spec);
  // The tokenizer of the trial's model (loaded without the weights for dry runs).
  const Tokenizer& tokenizer(const TrialConfig& trial);

  // Runs the examples of `trial` whose (dataset label, sample id) is not in `done`.
  TrialOutcome run(const TrialConfig& trial, const std::set<std::pair<std::string, std::string>>& done,
                   const std::function<void(const store::ExampleRecord&)>& on_example,
                   const std::function<void(const TrialProgress&)>& on_progress);

 private:
  struct LoadedModel;
  LoadedModel& model(const TrialConfig& trial);
  // The engine for `trial` (trial_engine.h): CPU engines are made per trial, the GPU engine is kept
  // while model, plugins and memory limit stay the same and `capacity` KV positions fit.
  TrialEngine& engine(const TrialConfig& trial, LoadedModel& lm, int64_t capacity);
  const MetricPlugin& metric(const std::string& spec);
  void run_examples(const TrialConfig& trial, const std::set<std::pair<std::string, std::string>>& done,
                    const std::function<void(const store::ExampleRecord&)>& on_example,
                    const std::function<void(const TrialProgress&)>& on_progress, TrialOutcome& outcome);

  const Catalog& catalog_;
  std::unique_ptr<LoadedModel> model_;  // the last (model, tokenizer, quant): trials are ordered quant-outermost
  std::unique_ptr<Model> spare_;        // loaded for its tokenizer, not yet quantized (taken by model())
  std::string spare_key_;
  std::map<std::string, std::unique_ptr<Tokenizer>> tokenizers_;  // by model + tokenizer path
  std::map<std::string, std::vector<Sample>> samples_;            // by tokenizer key + dataset spec
  std::map<std::string, std::unique_ptr<MetricPlugin>> metrics_;  // by metric spec
  std::unique_ptr<TrialEngine> cpu_, gpu_;
  std::string gpu_key_;
};

}  // namespace ctx::runner
