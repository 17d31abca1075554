#include "experiments/runner/trial_runner.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <span>

#include "core/base/error.h"
#include "core/base/system_info.h"
#include "core/base/threads.h"
#include "core/cuda/gpu_engine.h"
#include "core/instruments/clock.h"
#include "core/model/generate.h"
#include "core/model/transformer.h"
#include "core/quant/quantize_model.h"
#include "datasets/answer_extraction.h"
#include "eval/metrics/choice_accuracy.h"

namespace ctx::runner {

struct TrialRunner::LoadedModel {
  std::string key;
  std::unique_ptr<Model> model;
  const Tokenizer* tokenizer = nullptr;
};

namespace {

// Ends the trial with status oom (peak memory above the configured limit).
struct MemoryLimitExceeded : Error {
  using Error::Error;
};

std::string model_key(const TrialConfig& t) { return t.model + "\n" + t.tokenizer; }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The gold/chosen letter of choice i.
std::string letter(int64_t i) { return std::string(1, char('A' + i)); }

// The continuation's tokens as lm-evaluation-harness takes them: the tail of encode(context +
// continuation) after encode(context), so that a leading space merges as it does in running text.
std::vector<int32_t> continuation_tokens(const Tokenizer& tok, const std::string& context, const std::string& cont,
                                         const std::vector<int32_t>& context_ids) {
  const auto whole = tok.encode(context + cont, true);
  if (whole.size() > context_ids.size() && std::equal(context_ids.begin(), context_ids.end(), whole.begin()))
    return {whole.begin() + int64_t(context_ids.size()), whole.end()};
  return tok.encode(cont, false);
}

}  // namespace

TrialRunner::TrialRunner(const Catalog& catalog) : catalog_(catalog) {}
TrialRunner::~TrialRunner() = default;

std::string headline_key(const std::string& metric_name, const std::vector<std::string>& score_keys) {
  static const std::pair<const char*, const char*> kHeadline[] = {
      {"rouge", "rougeL_fmeasure"}, {"hotpot_em_f1", "em"}, {"squad_em_f1", "exact_match"}};
  for (const auto& [name, key] : kHeadline)
    if (metric_name == name && std::find(score_keys.begin(), score_keys.end(), key) != score_keys.end()) return key;
  CTX_CHECK(!score_keys.empty(), "metric ", metric_name, " has no score keys");
  return score_keys.front();
}

const Tokenizer& TrialRunner::tokenizer(const TrialConfig& trial) {
  const std::string key = model_key(trial);
  auto it = tokenizers_.find(key);
  if (it == tokenizers_.end()) {
    const Model* ref = model_ && model_->key.rfind(key + "\n", 0) == 0 ? model_->model.get() : nullptr;
    if (!ref) {  // load the model now and keep it for model(): loading twice would double the peak
      model_.reset();
      spare_.reset();
      release_free_memory();
      spare_ = load_model(trial.model);
      spare_key_ = key;
      ref = spare_.get();
    }
    it = tokenizers_.emplace(key, load_model_tokenizer(*ref, trial.tokenizer)).first;
  }
  return *it->second;
}

TrialRunner::LoadedModel& TrialRunner::model(const TrialConfig& trial) {
  const std::string key = model_key(trial) + "\n" + trial.quant;
  if (!model_ || model_->key != key) {
    model_.reset();  // free the previous weights first, and give the memory back (peak RSS is measured)
    auto loaded = std::make_unique<LoadedModel>();
    loaded->key = key;
    if (spare_ && spare_key_ == model_key(trial)) {
      loaded->model = std::move(spare_);
    } else {
      spare_.reset();
      release_free_memory();
      loaded->model = load_model(trial.model);
    }
    quantize_model_weights(loaded->model->weights, catalog_.quant, trial.quant);
    release_free_memory();
    model_ = std::move(loaded);
  }
  model_->tokenizer = &tokenizer(trial);
  return *model_;
}

const std::vector<Sample>& TrialRunner::samples(const TrialConfig& trial, const std::string& spec) {
  const std::string key = model_key(trial) + "\n" + spec;
  auto it = samples_.find(key);
  if (it == samples_.end()) {
    LoadOptions options;
    options.tokenizer = &tokenizer(trial);
    auto loaded = catalog_.dataset.create(spec)->load(options);
    it = samples_.emplace(key, std::move(loaded.samples)).first;
  }
  return it->second;
}

const MetricPlugin& TrialRunner::metric(const std::string& spec) {
  auto it = metrics_.find(spec);
  if (it == metrics_.end()) it = metrics_.emplace(spec, catalog_.metric.create(spec)).first;
  return *it->second;
}

TrialEngine& TrialRunner::engine(const TrialConfig& trial, LoadedModel& lm, int64_t capacity) {
  if (trial.device != "cuda") {
    gpu_.reset();
    cpu_.reset();
    cpu_ = make_cpu_trial_engine(*lm.model, trial, catalog_);
    return *cpu_;
  }
  cpu_.reset();
  // The uploaded weights are kept across trials of one model, quantizer and memory limit while the
  // KV capacity suffices.
  const std::string key = str_cat(lm.key, "\n", trial.quant, "\n", trial.memory_limit_mb, "\n", trial.dtype, "\n",
                                  trial.attention, "\n", trial.kv, "\n", trial.kv_quant, "\n", trial.batch_size);
  if (!gpu_ || gpu_key_ != key || gpu_->capacity() < capacity) {
    gpu_.reset();
    gpu_ = make_gpu_trial_engine(*lm.model, trial, std::max<int64_t>(capacity, 1), catalog_);
    gpu_key_ = key;
  }
  return *gpu_;
}

TrialOutcome TrialRunner::run(const TrialConfig& trial, const std::set<std::pair<std::string, std::string>>& done,
                              const std::function<void(const store::ExampleRecord&)>& on_example,
                              const std::function<void(const TrialProgress&)>& on_progress) {
  TrialOutcome outcome;
  try {
    run_examples(trial, done, on_example, on_progress, outcome);
  } catch (const MemoryLimitExceeded& e) {
    outcome.status = "oom", outcome.message = e.what();
  } catch (const cuda::CudaOutOfMemory& e) {
    gpu_.reset();  // give the device memory back before the next trial
    outcome.status = "oom", outcome.message = e.what();
  } catch (const std::bad_alloc&) {
    outcome.status = "oom", outcome.message = "out of memory (an allocation failed)";
  } catch (const Unsupported& e) {
    outcome.status = "unsupported", outcome.message = e.what();
  } catch (const Error& e) {
    outcome.status = "failed", outcome.message = e.what();
  }
  return outcome;
}

void TrialRunner::run_examples(const TrialConfig& trial, const std::set<std::pair<std::string, std::string>>& done,
                               const std::function<void(const store::ExampleRecord&)>& on_example,
                               const std::function<void(const TrialProgress&)>& on_progress, TrialOutcome& outcome) {
  set_num_threads(int(trial.threads));
  // Datasets first: a missing file is reported before the model is built.
  struct Pending {
    std::string label;
    std::vector<const Sample*> samples;
  };
  std::vector<Pending> pending;
  TrialProgress progress;
  for (const auto& [label, spec] : trial.datasets) {
    Pending p{label, {}};
    const auto& all = samples(trial, spec);
    // max_batches: the first max_batches * batch_size samples only.
    const size_t take = trial.max_batches > 0 ? std::min(all.size(), size_t(trial.max_batches * trial.batch_size)) : all.size();
    for (const Sample& s : std::span<const Sample>(all.data(), take)) {
      ++progress.examples_total;
      if (done.count({label, s.id})) {
        ++progress.examples_done;
      } else {
        p.samples.push_back(&s);
      }
    }
    pending.push_back(std::move(p));
  }
  cpu_.reset();  // it refers to the model, which model() may replace
  LoadedModel& lm = model(trial);
  const Tokenizer& tok = *lm.tokenizer;
  outcome.weight_bytes = lm.model->weights.bytes_held();
  int64_t capacity = 0;  // the GPU engine's KV positions: the longest sequence any example needs
  if (trial.device == "cuda") {
    for (const Pending& p : pending)
      for (const Sample* s : p.samples) {
        const auto ids = tok.encode(s->prompt, true);
        int64_t extra = trial.max_new_tokens;
        if (s->scoring == "loglikelihood") {
          extra = 0;
          for (const auto& cont : s->continuations)
            extra = std::max(extra, int64_t(continuation_tokens(tok, s->prompt, cont, ids).size()));
        }
        capacity = std::max(capacity, int64_t(ids.size()) + extra + 1);
      }
  }
  TrialEngine& engine = this->engine(trial, lm, capacity);

  const double t_start = monotonic_seconds();
  int64_t new_tokens_total = 0;
  const int64_t limit_bytes = trial.memory_limit_mb * (int64_t(1) << 20);
  for (const Pending& p : pending) {
    for (size_t first = 0; first < p.samples.size(); first += size_t(trial.batch_size)) {
      const size_t n = std::min(p.samples.size() - first, size_t(trial.batch_size));
      const std::span<const Sample* const> batch(p.samples.data() + first, n);
      std::vector<store::ExampleRecord> records(n);
      std::vector<std::vector<int32_t>> prompts(n);
      for (size_t i = 0; i < n; ++i) {
        prompts[i] = tok.encode(batch[i]->prompt, true);
        records[i].dataset = p.label;
        records[i].example_id = batch[i]->id;
        records[i].prompt_hash = store::hash_hex(batch[i]->prompt);
        records[i].prompt_tokens = int64_t(prompts[i].size());
        records[i].references = batch[i]->references;
      }
      std::vector<double> ttft, latency, decode_ms;
      int64_t peak = 0, kv_bytes = 0, peak_device = 0;
      const bool loglik = batch[0]->scoring == "loglikelihood";
      for (int64_t rep = 0; rep < trial.repetitions; ++rep) {
        reset_peak_rss();
        engine.reset_peak_device_memory();
        const double t0 = monotonic_seconds();
        if (loglik) {
          std::vector<LoglikRequest> requests;
          for (size_t i = 0; i < n; ++i)
            for (const auto& cont : batch[i]->continuations)
              requests.push_back({prompts[i], continuation_tokens(tok, batch[i]->prompt, cont, prompts[i])});
          const auto results = engine.loglikelihood(requests);
          const double dt = monotonic_seconds() - t0;
          ttft.push_back(dt * 1e3), latency.push_back(dt * 1e3), decode_ms.push_back(0);
          if (rep == 0) {
            size_t r = 0;
            for (size_t i = 0; i < n; ++i) {
              int64_t best = 0;
              for (size_t c = 0; c < batch[i]->continuations.size(); ++c, ++r)
                if (results[r].logprob > results[r - c + size_t(best)].logprob) best = int64_t(c);
              records[i].prediction = letter(best);
            }
          }
        } else {
          GenerateOptions opt;
          opt.max_new_tokens = trial.max_new_tokens;
          if (batch[0]->max_new_tokens > 0) opt.max_new_tokens = std::min(opt.max_new_tokens, batch[0]->max_new_tokens);
          opt.stop_ids = lm.model->stop_ids;
          GenerateTimings tm;
          const auto results = engine.generate(prompts, opt, &tm);
          latency.push_back((monotonic_seconds() - t0) * 1e3);
          ttft.push_back(tm.prefill_seconds * 1e3);
          decode_ms.push_back(tm.decode_steps ? tm.decode_seconds * 1e3 / double(tm.decode_steps) : 0);
          kv_bytes = std::max(kv_bytes, tm.kv_bytes_reserved);
          if (rep == 0) {
            for (size_t i = 0; i < n; ++i) {
              std::vector<int32_t> ids = results[i].tokens;
              if (results[i].stopped && !ids.empty()) ids.pop_back();
              records[i].new_tokens = int64_t(results[i].tokens.size());
              records[i].prediction = tok.decode(ids);
              new_tokens_total += records[i].new_tokens;
            }
          }
        }
        peak = std::max(peak, peak_rss_bytes());
        peak_device = std::max(peak_device, engine.peak_device_bytes());
      }
      int64_t batch_prompt_tokens = 0;
      for (const auto& pr : prompts) batch_prompt_tokens += int64_t(pr.size());
      for (size_t i = 0; i < n; ++i) {
        const Sample& s = *batch[i];
        store::ExampleRecord& rec = records[i];
        rec.ttft_ms = median(ttft);
        rec.latency_ms = median(latency);
        rec.decode_ms_per_token = median(decode_ms);
        rec.prefill_tok_s = rec.ttft_ms > 0 ? double(batch_prompt_tokens) / (rec.ttft_ms * 1e-3) : 0;
        rec.peak_host_bytes = peak;
        rec.peak_device_bytes = peak_device;
        rec.kv_bytes = kv_bytes;
        // Answer extraction, then scoring.
        std::string answer = rec.prediction;
        if (s.extraction == "first_line") {
          answer = std::string(data::first_line(answer));
        } else if (s.extraction == "mmlu_letter" && !loglik) {
          const auto l = data::extract_mmlu_letter(answer);
          answer = l ? std::string(1, *l) : "";
        } else if (s.extraction == "longbench_v2") {
          const auto l = longbench_v2_extract(answer);
          answer = l ? std::string(1, *l) : "";
        }
        if (s.metric == "accuracy") {
          const std::string gold = loglik ? letter(s.gold_index) : (s.references.empty() ? "" : s.references[0]);
          const double acc = !answer.empty() && answer == gold ? 1.0 : 0.0;
          rec.scores = {{"accuracy", acc}, {"quality", 100 * acc}};
        } else {
          const MetricPlugin& m = metric(s.metric);
          for (const auto& [k, v] : m.scores(answer, s.references, s.metric_options))
            if (k.find('@') == std::string::npos) rec.scores[k] = v;
          rec.scores["quality"] = 100 * rec.scores.at(headline_key(std::string(m.name()), m.score_keys()));
        }
        on_example(rec);
        ++outcome.examples_run;
        ++progress.examples_done;
      }
      progress.elapsed_s = monotonic_seconds() - t_start;
      progress.new_tokens_per_s = progress.elapsed_s > 0 ? double(new_tokens_total) / progress.elapsed_s : 0;
      if (on_progress) on_progress(progress);
      if (trial.device == "cpu" && limit_bytes > 0 && peak > limit_bytes)  // cuda: the allocator enforces it
        throw MemoryLimitExceeded(str_cat("peak host memory ", peak >> 20, " MiB exceeded memory_limit_mb=",
                                          trial.memory_limit_mb, " (dataset ", p.label, ", example ",
                                          batch[0]->id, ")"));
    }
  }
}

}  // namespace ctx::runner
