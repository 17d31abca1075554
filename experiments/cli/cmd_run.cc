// ctxlab run: executes an experiment config into the run store (see experiments/runner/).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <span>
#include <iostream>

#include "core/base/error.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "experiments/runner/experiment_config.h"
#include "experiments/runner/stored_trial.h"
#include "plugins/register_all.h"

namespace ctx::cli {

namespace {

// "i/N" -> (i, N) with 0 <= i < N.
std::pair<int64_t, int64_t> parse_shard(const std::string& text) {
  const size_t slash = text.find('/');
  int64_t i = -1, n = 0;
  try {
    if (slash == std::string::npos) throw std::invalid_argument("");
    size_t a = 0, b = 0;
    i = std::stoll(text.substr(0, slash), &a);
    n = std::stoll(text.substr(slash + 1), &b);
    if (a != slash || b != text.size() - slash - 1) throw std::invalid_argument("");
  } catch (const std::exception&) {
    fail("--shard ", text, ": expected I/N, e.g. 0/4");
  }
  if (n < 1 || i < 0 || i >= n) fail("--shard ", text, ": need 0 <= I < N");
  return {i, n};
}

// Reads every dataset of `trials` (cached in `runner`), so that a bad path or row fails before
// anything runs, with the config file and dataset label in the message.
void load_datasets(const runner::ExperimentConfig& config, runner::TrialRunner& runner,
                   const std::vector<const runner::TrialConfig*>& trials) {
  for (const auto* t : trials)
    for (const auto& [label, spec] : t->datasets) {
      try {
        runner.samples(*t, spec);
      } catch (const Error& e) {
        fail(config.source, ": [datasets] ", label, ": ", e.what());
      }
    }
}

void print_dry_run(const runner::ExperimentConfig& config, runner::TrialRunner& runner,
                   const std::vector<const runner::TrialConfig*>& trials) {
  std::printf("experiment %s (%s): %zu trials\n", config.name.c_str(), config.source.c_str(), trials.size());
  std::printf("  %-5s %-42s %-26s %-10s %-26s %7s %5s\n", "trial", "attention", "kv", "kv_quant", "quant", "context", "batch");
  for (const auto* t : trials) {
    auto cut = [](const std::string& s, size_t w) { return s.size() <= w ? s : s.substr(0, w - 3) + "..."; };
    std::printf("  %-5lld %-42s %-26s %-10s %-26s %7lld %5lld\n", (long long)t->index, cut(t->attention, 42).c_str(),
                cut(t->kv, 26).c_str(), cut(t->kv_quant, 10).c_str(), cut(t->quant, 26).c_str(),
                (long long)t->context_length, (long long)t->batch_size);
  }
  int64_t examples = 0, tokens = 0;
  for (const auto* t : trials) {
    for (const auto& [label, spec] : t->datasets) {
      const auto& all = runner.samples(*t, spec);
      const size_t take = t->max_batches > 0 ? std::min(all.size(), size_t(t->max_batches * t->batch_size)) : all.size();
      const std::span<const Sample> samples(all.data(), take);
      examples += int64_t(samples.size());
      for (const auto& s : samples) {
        const int64_t prompt = s.truncation.kept_tokens > 0 ? s.truncation.kept_tokens
                                                            : int64_t(runner.tokenizer(*t).encode(s.prompt, true).size());
        const int64_t gen = s.scoring == "loglikelihood" ? 0
                            : s.max_new_tokens > 0      ? std::min(s.max_new_tokens, t->max_new_tokens)
                                                        : t->max_new_tokens;
        tokens += (prompt * int64_t(s.scoring == "loglikelihood" ? s.continuations.size() : 1) + gen) * t->repetitions;
      }
    }
  }
  std::printf("estimated work: %lld examples, at most %lld tokens through the model (prompts + new tokens, x repetitions)\n",
              (long long)examples, (long long)tokens);
}

}  // namespace

int cmd_run(const Args& args) {
  po::options_description desc("run options");
  desc.add_options()
      ("config", po::value<std::string>()->required(), "experiment config (.ini or .json; see experiments/configs/)")
      ("db", po::value<std::string>()->default_value("ctxlab.db"), "run store (SQLite file; created if absent)")
      ("set", po::value<std::vector<std::string>>()->composing(), "override a config key, e.g. --set threads=1 --set 'kv=none;l2norm'")
      ("dry-run", "print the expanded trials and the estimated work, run nothing")
      ("resume", "continue this experiment: skip trials already ok, finish interrupted ones, run the rest")
      ("shard", po::value<std::string>(), "run every N-th trial starting at I (I/N, 0-based), for sweeps over several machines")
      ("abort-after", po::value<int64_t>()->default_value(0), "testing aid: exit abruptly (as if killed) after N committed examples");
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!parse_options("run", "CONFIG [--db FILE] [--set KEY=VALUE]... [--dry-run] [--resume] [--shard I/N]", desc, args, vm,
                     &pos))
    return 0;
  const auto overrides = vm.count("set") ? vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
  const auto config = runner::load_experiment_config(vm["config"].as<std::string>(), overrides, builtin_catalog());
  std::vector<const runner::TrialConfig*> trials;
  const auto [shard, shards] = vm.count("shard") ? parse_shard(vm["shard"].as<std::string>()) : std::pair<int64_t, int64_t>{0, 1};
  for (const auto& t : config.trials)
    if (t.index % shards == shard) trials.push_back(&t);

  runner::TrialRunner runner(builtin_catalog());
  load_datasets(config, runner, trials);
  if (vm.count("dry-run")) {
    print_dry_run(config, runner, trials);
    return 0;
  }
  store::RunStore store(vm["db"].as<std::string>());
  const int64_t experiment_id = store.ensure_experiment(config.name, config.to_json().dump());
  runner::Progress progress(stderr, ::isatty(::fileno(stderr)));
  runner::StoredTrialOptions options;
  options.abort_after_examples = vm["abort-after"].as<int64_t>();
  int64_t ok = 0, skipped = 0, beyond_oom = 0;
  std::vector<std::pair<int64_t, std::string>> finished;
  std::vector<const runner::TrialConfig*> oom;  // stop_at_oom: trials that ended oom
  for (const auto* t : trials) {
    options.resume_run.reset();
    // stop_at_oom: memory only grows with the context and the batch, so a trial at least as large as
    // one of its setting that ran out of memory is not run.
    const auto larger = std::find_if(oom.begin(), oom.end(), [&](const runner::TrialConfig* o) {
      return o->same_setting(*t) && o->context_length <= t->context_length && o->batch_size <= t->batch_size;
    });
    if (config.stop_at_oom && larger != oom.end()) {
      std::printf("trial %lld (context %lld, batch %lld) not run: trial %lld of its setting (context %lld, batch %lld) "
                  "ended oom\n", (long long)t->index, (long long)t->context_length, (long long)t->batch_size,
                  (long long)(*larger)->index, (long long)(*larger)->context_length, (long long)(*larger)->batch_size);
      std::fflush(stdout);  // kept if the sweep is killed later
      ++beyond_oom;
      continue;
    }
    if (vm.count("resume")) {
      if (const auto prev = store.find_run(experiment_id, store::hash_hex(t->canonical()))) {
        if (prev->status != "running") {
          ++skipped;
          if (prev->status == "oom") oom.push_back(t);
          continue;  // finished before (ok, oom, unsupported or failed): keep that result
        }
        options.resume_run = prev->id;
      }
    }
    const auto r = runner::run_stored_trial(store, experiment_id, runner, *t, int64_t(config.trials.size()), progress, options);
    ok += r.outcome.status == "ok";
    if (r.outcome.status == "oom") oom.push_back(t);
    finished.emplace_back(r.run_id, r.outcome.status);
  }
  std::printf("experiment %s: %zu trials run (%lld ok)%s%s, store %s\n", config.name.c_str(), finished.size(), (long long)ok,
              skipped ? (", " + std::to_string(skipped) + " already finished").c_str() : "",
              beyond_oom ? (", " + std::to_string(beyond_oom) + " not run beyond an oom (stop_at_oom)").c_str() : "",
              store.path().c_str());
  std::printf("next: ctxlab ls --db %s --experiment %s | ctxlab plot --db %s --experiment %s --kind pareto -o plots/\n",
              store.path().c_str(), config.name.c_str(), store.path().c_str(), config.name.c_str());
  return 0;
}

}  // namespace ctx::cli
