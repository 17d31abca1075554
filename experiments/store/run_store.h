// The run store (DESIGN.md "Runs"): every experiment, run, parameter, metric, finished example and
// artifact in one SQLite database file.
//
// Schema (version in PRAGMA user_version, kRunStoreSchemaVersion; older files are migrated on open
// by the steps in run_store.cc, newer ones refused; a new file is created at version 1 and migrated,
// so every store goes through the same migration path):
//   experiments(id, name UNIQUE, config, created_at)
//   runs(id, experiment_id, trial_index, config, config_hash, status, message, started_at, finished_at,
//        git_commit, compiler, cpu, gpu, driver, host, seed, rerun_of)        rerun_of: since version 2
//   params(run_id, key, value)                       e.g. attention, kv, quant, context_length, batch_size
//   metrics(run_id, scope, name, value)              scope "" = the whole run, else a dataset label
//   examples(run_id, dataset, example_id, prompt_hash, prompt_tokens, new_tokens, prediction,
//            references (JSON array), scores (JSON object), ttft_ms, latency_ms, prefill_tok_s,
//            decode_ms_per_token, peak_host_bytes, kv_bytes, peak_device_bytes)   the last since version 3
//   artifacts(id, experiment_id, run_id, kind, path, created_at)            since version 2
// with indexes for the CLI's queries (runs by experiment and by config hash, metrics and examples by
// run, params by key and value, artifacts by experiment). NaN doubles are stored as NULL (SQLite's
// own mapping) and read back as NaN.
//
// Durability: WAL journal; each call that writes is one transaction, so a killed process loses at most
// the example in flight. Concurrency: several processes may write one file at once; every statement
// waits on a locked database (busy timeout) and a transaction that still finds it busy is retried, so
// both writers succeed (RunStoreOptions bounds the waiting).
// Errors (cannot open, not a ctxlab store, newer schema, SQL failure, still locked after the retries)
// throw ctx::Error, one line naming the file.
// A RunStore object is not thread-safe; use one per thread or process.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ctx::store {

namespace sqlite {
class Db;
}

// Version 1: experiments, runs (without rerun_of), params, metrics, examples.
// Version 2: runs.rerun_of, artifacts, the query indexes.
inline constexpr int kRunStoreSchemaVersion = 3;

struct Environment {
  std::string git_commit, compiler, cpu, gpu, driver, host;
};

struct RunRecord {
  int64_t id = 0;
  int64_t experiment_id = 0;
  std::string experiment;  // experiment name (filled by queries)
  int64_t trial_index = 0;
  std::string config;       // canonical trial config (JSON text)
  std::string config_hash;  // hex digest of `config`
  std::string status;       // running | ok | oom | unsupported | failed
  std::string message;      // why, for oom/unsupported/failed
  std::string started_at, finished_at;  // ISO 8601 UTC ("" while running)
  Environment env;
  int64_t seed = 0;
  std::optional<int64_t> rerun_of;
  std::map<std::string, std::string> params;  // filled by get_run / run_summaries
};

struct ExampleRecord {
  std::string dataset;     // dataset label within the experiment
  std::string example_id;  // Sample::id
  std::string prompt_hash;
  int64_t prompt_tokens = 0;
  int64_t new_tokens = 0;
  std::string prediction;
  std::vector<std::string> references;
  std::map<std::string, double> scores;
  double ttft_ms = 0, latency_ms = 0, prefill_tok_s = 0, decode_ms_per_token = 0;
  int64_t peak_host_bytes = 0, kv_bytes = 0;
  int64_t peak_device_bytes = 0;  // GPU trials: the engine's device allocator peak; 0 on the CPU
};

struct MetricRecord {
  std::string scope;  // "" = whole run, else dataset label
  std::string name;
  double value = 0;
};

// A run with its params and metrics, for listings, comparisons, export and plots.
struct RunSummary {
  RunRecord run;
  std::vector<MetricRecord> metrics;
  // The value of (scope, name), if recorded.
  std::optional<double> metric(const std::string& name, const std::string& scope = "") const;
};

struct RunFilter {
  std::string experiment;  // "" = all
  std::string status;      // "" = all
  // Runs whose params[key] == value for every entry.
  std::map<std::string, std::string> params;
};

struct ArtifactRecord {
  int64_t id = 0;
  int64_t experiment_id = 0;
  std::optional<int64_t> run_id;
  std::string kind;  // e.g. "plot:pareto"
  std::string path;
  std::string created_at;
};

struct RunStoreOptions {
  // How long one statement waits for another connection's lock before SQLite reports it busy.
  int busy_timeout_ms = 10000;
  // How many times a transaction that still found the file busy is run (with a short backoff)
  // before the call throws.
  int transaction_attempts = 8;
};

class RunStore {
 public:
  // Opens (creating if absent) and migrates the store at `path`. A file that is not SQLite, a SQLite
  // file that is not a run store, or a store of a newer schema is refused (ctx::Error) and left as is.
  explicit RunStore(const std::string& path, const RunStoreOptions& options = {});
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const;

  // The id of experiment `name`, created with `config` (JSON text) if absent; an existing experiment
  // keeps its stored config.
  int64_t ensure_experiment(const std::string& name, const std::string& config);
  std::optional<int64_t> find_experiment(const std::string& name) const;
  std::vector<std::pair<int64_t, std::string>> experiments() const;  // (id, name) by id

  // Inserts a run with status "running", started_at now; returns its id. `run.params` are stored too.
  // An empty config_hash is stored as hash_hex(config). run.id, status, message and the times are ignored.
  int64_t begin_run(const RunRecord& run);
  // The latest run of `experiment_id` with this config hash, if any (for --resume).
  std::optional<RunRecord> find_run(int64_t experiment_id, const std::string& config_hash) const;
  // Commits one finished example (one transaction). Replaces an earlier row with the same
  // (dataset, example_id) of that run (the new row then comes last in insertion order).
  void add_example(int64_t run_id, const ExampleRecord& example);
  // (dataset, example_id) of every stored example of the run.
  std::vector<std::pair<std::string, std::string>> example_keys(int64_t run_id) const;
  std::vector<ExampleRecord> examples(int64_t run_id) const;  // ordered by rowid (insertion order)
  // Sets status, message, finished_at and replaces the run's metrics, in one transaction. Throws
  // ctx::Error "no run N in FILE" for an unknown run; a repeated (scope, name) keeps the last value.
  void finish_run(int64_t run_id, const std::string& status, const std::string& message,
                  const std::vector<MetricRecord>& metrics);

  RunRecord get_run(int64_t run_id) const;  // throws ctx::Error "no run N in FILE"
  std::vector<MetricRecord> metrics(int64_t run_id) const;  // ordered by scope, then insertion
  std::vector<RunSummary> run_summaries(const RunFilter& filter = {}) const;  // ordered by run id

  int64_t add_artifact(const ArtifactRecord& artifact);
  std::vector<ArtifactRecord> artifacts(int64_t experiment_id) const;

  // Copies every experiment, run (with params, metrics, examples) and artifact of the store at
  // `other_path` into this one: experiments are matched by name, runs get new ids (rerun_of remapped);
  // a run already present (same experiment, config_hash, started_at) is skipped, and so is an
  // artifact already present (same experiment, run, kind, path, created_at). Runs that share such a
  // key (started in the same second) are matched in id order, so all of them are copied, once.
  // Returns runs copied.
  // One transaction. `other_path` must exist and is migrated to the current schema first; merging a
  // store into itself is refused.
  int64_t merge_from(const std::string& other_path);

 private:
  std::string path_;
  RunStoreOptions options_;
  std::unique_ptr<sqlite::Db> db_;
};

// Hex FNV-1a 64 digest: config hashes and prompt hashes.
std::string hash_hex(const std::string& text);
// Current UTC time as "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_now();

}  // namespace ctx::store
