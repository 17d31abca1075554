#include "experiments/store/run_store.h"

#include <sqlite3.h>

#include <array>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <tuple>

#include "experiments/store/sqlite_db.h"

namespace ctx::store {
namespace {

using sqlite::Db;
using sqlite::Statement;

// kMigrations[v] upgrades a store from user_version v to v + 1. Never edit a step once released:
// existing files were made by it. Add a step (and bump kRunStoreSchemaVersion) instead.
constexpr std::array<std::string_view, 3> kMigrations = {
    // 0 -> 1: the first schema.
    R"sql(
CREATE TABLE experiments(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  config TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE runs(
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  trial_index INTEGER NOT NULL,
  config TEXT NOT NULL,
  config_hash TEXT NOT NULL,
  status TEXT NOT NULL,
  message TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  git_commit TEXT NOT NULL,
  compiler TEXT NOT NULL,
  cpu TEXT NOT NULL,
  gpu TEXT NOT NULL,
  driver TEXT NOT NULL,
  host TEXT NOT NULL,
  seed INTEGER NOT NULL);
CREATE TABLE params(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key));
CREATE TABLE metrics(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  scope TEXT NOT NULL,
  name TEXT NOT NULL,
  value REAL,
  UNIQUE (run_id, scope, name));
CREATE TABLE examples(
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  dataset TEXT NOT NULL,
  example_id TEXT NOT NULL,
  prompt_hash TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  new_tokens INTEGER NOT NULL,
  prediction TEXT NOT NULL,
  "references" TEXT NOT NULL,
  scores TEXT NOT NULL,
  ttft_ms REAL,
  latency_ms REAL,
  prefill_tok_s REAL,
  decode_ms_per_token REAL,
  peak_host_bytes INTEGER NOT NULL,
  kv_bytes INTEGER NOT NULL,
  UNIQUE (run_id, dataset, example_id));
)sql",
    // 1 -> 2: reruns, artifacts and the query indexes. Lookups of params, metrics and examples by run
    // use the leading run_id column of their unique indexes, and runs by experiment the leading
    // column of runs_by_config, so no separate single-column indexes are needed for those.
    R"sql(
ALTER TABLE runs ADD COLUMN rerun_of INTEGER REFERENCES runs(id);
CREATE TABLE artifacts(
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  run_id INTEGER REFERENCES runs(id),
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE INDEX runs_by_config ON runs(experiment_id, config_hash);
CREATE INDEX params_by_value ON params(key, value);
CREATE INDEX artifacts_by_experiment ON artifacts(experiment_id);
)sql",
    // 2 -> 3: peak device memory of GPU trials (0 for CPU trials and for rows written before).
    R"sql(
ALTER TABLE examples ADD COLUMN peak_device_bytes INTEGER NOT NULL DEFAULT 0;
)sql",
};
static_assert(kMigrations.size() == kRunStoreSchemaVersion);

// The columns of runs that a run carries over verbatim (begin_run fills them, merge_from copies them).
constexpr std::string_view kRunCopiedColumns =
    "trial_index, config, config_hash, status, message, started_at, finished_at, "
    "git_commit, compiler, cpu, gpu, driver, host, seed";
// Every column of examples after run_id, in ExampleRecord order.
constexpr std::string_view kExampleColumns =
    R"(dataset, example_id, prompt_hash, prompt_tokens, new_tokens, prediction, "references", scores, )"
    "ttft_ms, latency_ms, prefill_tok_s, decode_ms_per_token, peak_host_bytes, kv_bytes, peak_device_bytes";
// A run with its experiment's name, as read_run expects; callers append WHERE/ORDER BY.
constexpr std::string_view kSelectRun =
    "SELECT r.id, r.experiment_id, e.name, r.trial_index, r.config, r.config_hash, r.status, r.message, "
    "r.started_at, r.finished_at, r.git_commit, r.compiler, r.cpu, r.gpu, r.driver, r.host, r.seed, "
    "r.rerun_of FROM runs r JOIN experiments e ON e.id = r.experiment_id ";

std::string sql(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

RunRecord read_run(const Statement& s) {
  RunRecord r;
  r.id = s.int64(0);
  r.experiment_id = s.int64(1);
  r.experiment = s.text(2);
  r.trial_index = s.int64(3);
  r.config = s.text(4);
  r.config_hash = s.text(5);
  r.status = s.text(6);
  r.message = s.text(7);
  r.started_at = s.text(8);
  r.finished_at = s.text(9);
  r.env = {s.text(10), s.text(11), s.text(12), s.text(13), s.text(14), s.text(15)};
  r.seed = s.int64(16);
  r.rerun_of = s.optional_int64(17);
  return r;
}

std::map<std::string, std::string> read_params(const Db& db, int64_t run_id) {
  Statement s = db.prepare("SELECT key, value FROM params WHERE run_id = ?1");
  s.bind(run_id);
  std::map<std::string, std::string> params;
  while (s.step()) params[s.text(0)] = s.text(1);
  return params;
}

std::vector<MetricRecord> read_metrics(const Db& db, int64_t run_id) {
  Statement s = db.prepare("SELECT scope, name, value FROM metrics WHERE run_id = ?1 ORDER BY scope, rowid");
  s.bind(run_id);
  std::vector<MetricRecord> metrics;
  while (s.step()) metrics.push_back({s.text(0), s.text(1), s.real(2)});
  return metrics;
}

// JSON has no NaN: nlohmann writes it as null, which reads back as NaN.
std::map<std::string, double> parse_scores(const Db& db, const std::string& text) {
  std::map<std::string, double> scores;
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) db.fail("an example's scores are not a JSON object: " + text);
  for (const auto& [name, value] : json.items())
    scores[name] = value.is_number() ? value.get<double>() : std::numeric_limits<double>::quiet_NaN();
  return scores;
}

std::vector<std::string> parse_references(const Db& db, const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_array()) db.fail("an example's references are not a JSON array: " + text);
  std::vector<std::string> references;
  for (const auto& r : json) {
    if (!r.is_string()) db.fail("an example's references are not strings: " + text);
    references.push_back(r.get<std::string>());
  }
  return references;
}

int read_user_version(const Db& db) {
  Statement s = db.prepare("PRAGMA user_version");
  s.step();
  return static_cast<int>(s.int64(0));
}

bool has_table(const Db& db, std::string_view name) {
  Statement s = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
  s.bind(name);
  return s.step();
}

bool has_sqlite_header(const std::string& file) {
  constexpr std::string_view kMagic("SQLite format 3\0", 16);
  std::ifstream in(file, std::ios::binary);
  std::string header(kMagic.size(), '\0');
  in.read(header.data(), header.size());
  return in.gcount() == 0 || header == kMagic;  // an empty file is a new database
}

// Refuses files this code must not touch, before anything writes to them (not even the WAL switch).
void check_is_run_store(const Db& db) {
  struct Found {
    int version = 0;
    int64_t tables = 0;
    bool experiments = false;
  };
  // One snapshot: another process may be creating the store meanwhile, and its tables and
  // user_version appear together only within one read transaction.
  const Found found = [&] {
    try {
      return db.read([&] {
        Statement tables = db.prepare("SELECT count(*) FROM sqlite_master");
        tables.step();
        return Found{read_user_version(db), tables.int64(0), has_table(db, "experiments")};
      });
    } catch (const Error&) {
      // SQLite blames a foreign file on whichever statement read it first; say what is wrong instead.
      if (!has_sqlite_header(db.file())) db.fail("not a SQLite database (no SQLite header)");
      throw;
    }
  }();
  if (found.version > kRunStoreSchemaVersion)
    db.fail(str_cat("schema version ", found.version, " is newer than this ctxlab reads (", kRunStoreSchemaVersion,
                    "); use a newer ctxlab"));
  if (found.version < 0) db.fail(str_cat("not a ctxlab run store (user_version ", found.version, ")"));
  if (found.version == 0 && found.tables > 0)
    db.fail("not a ctxlab run store (it has tables but no schema version)");
  if (found.version > 0 && !found.experiments)
    db.fail(str_cat("not a ctxlab run store (schema version ", found.version, " but no experiments table)"));
}

void migrate(const Db& db) {
  db.write([&] {
    // Read again inside the write lock: another process may have migrated the file meanwhile.
    for (int version = read_user_version(db); version < kRunStoreSchemaVersion; ++version) {
      db.exec(kMigrations[version]);
      // PRAGMA takes no bound parameters; the value is our own counter.
      db.exec(str_cat("PRAGMA user_version = ", version + 1));
    }
  });
}

void configure(const Db& db) {
  db.exec("PRAGMA foreign_keys = ON");
  db.exec("PRAGMA synchronous = NORMAL");  // with WAL: durable against a killed process, fast commits
  db.retry([&] {
    Statement s = db.prepare("PRAGMA journal_mode = WAL");
    s.step();
    if (s.text(0) != "wal") db.fail("cannot use the WAL journal (journal_mode is " + s.text(0) + ")");
  });
}

}  // namespace

std::optional<double> RunSummary::metric(const std::string& name, const std::string& scope) const {
  for (const MetricRecord& m : metrics)
    if (m.name == name && m.scope == scope) return m.value;
  return std::nullopt;
}

RunStore::RunStore(const std::string& path, const RunStoreOptions& options)
    : path_(path),
      options_(options),
      db_(std::make_unique<Db>(path, options.busy_timeout_ms, options.transaction_attempts)) {
  check_is_run_store(*db_);
  configure(*db_);
  migrate(*db_);
}

RunStore::~RunStore() = default;

int RunStore::schema_version() const { return read_user_version(*db_); }

int64_t RunStore::ensure_experiment(const std::string& name, const std::string& config) {
  return db_->write([&] {
    db_->prepare("INSERT INTO experiments(name, config, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING")
        .bind(name, config, utc_now())
        .run();
    return *find_experiment(name);
  });
}

std::optional<int64_t> RunStore::find_experiment(const std::string& name) const {
  Statement s = db_->prepare("SELECT id FROM experiments WHERE name = ?1");
  s.bind(name);
  if (!s.step()) return std::nullopt;
  return s.int64(0);
}

std::vector<std::pair<int64_t, std::string>> RunStore::experiments() const {
  Statement s = db_->prepare("SELECT id, name FROM experiments ORDER BY id");
  std::vector<std::pair<int64_t, std::string>> out;
  while (s.step()) out.emplace_back(s.int64(0), s.text(1));
  return out;
}

int64_t RunStore::begin_run(const RunRecord& run) {
  const std::string config_hash = run.config_hash.empty() ? hash_hex(run.config) : run.config_hash;
  return db_->write([&] {
    db_->prepare(sql({"INSERT INTO runs(experiment_id, rerun_of, ", kRunCopiedColumns,
                      ") VALUES (?1, ?2, ?3, ?4, ?5, 'running', '', ?6, '', ?7, ?8, ?9, ?10, ?11, ?12, ?13)"}))
        .bind(run.experiment_id, run.rerun_of, run.trial_index, run.config, config_hash, utc_now(),
              run.env.git_commit, run.env.compiler, run.env.cpu, run.env.gpu, run.env.driver, run.env.host, run.seed)
        .run();
    const int64_t id = db_->last_insert_rowid();
    Statement param = db_->prepare("INSERT INTO params(run_id, key, value) VALUES (?1, ?2, ?3)");
    for (const auto& [key, value] : run.params) param.reset().bind(id, key, value).run();
    return id;
  });
}

std::optional<RunRecord> RunStore::find_run(int64_t experiment_id, const std::string& config_hash) const {
  return db_->read([&]() -> std::optional<RunRecord> {
    Statement s = db_->prepare(sql({kSelectRun,
                                    "WHERE r.experiment_id = ?1 AND r.config_hash = ?2 "
                                    "ORDER BY r.started_at DESC, r.id DESC LIMIT 1"}));
    s.bind(experiment_id, config_hash);
    if (!s.step()) return std::nullopt;
    RunRecord run = read_run(s);
    run.params = read_params(*db_, run.id);
    return run;
  });
}

void RunStore::add_example(int64_t run_id, const ExampleRecord& e) {
  const std::string references = nlohmann::json(e.references).dump();
  const std::string scores = nlohmann::json(e.scores).dump();
  db_->write([&] {
    db_->prepare(sql({"INSERT OR REPLACE INTO examples(run_id, ", kExampleColumns,
                      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"}))
        .bind(run_id, e.dataset, e.example_id, e.prompt_hash, e.prompt_tokens, e.new_tokens, e.prediction,
              references, scores, e.ttft_ms, e.latency_ms, e.prefill_tok_s, e.decode_ms_per_token,
              e.peak_host_bytes, e.kv_bytes, e.peak_device_bytes)
        .run();
  });
}

std::vector<std::pair<std::string, std::string>> RunStore::example_keys(int64_t run_id) const {
  Statement s = db_->prepare("SELECT dataset, example_id FROM examples WHERE run_id = ?1 ORDER BY rowid");
  s.bind(run_id);
  std::vector<std::pair<std::string, std::string>> keys;
  while (s.step()) keys.emplace_back(s.text(0), s.text(1));
  return keys;
}

std::vector<ExampleRecord> RunStore::examples(int64_t run_id) const {
  Statement s = db_->prepare(sql({"SELECT ", kExampleColumns, " FROM examples WHERE run_id = ?1 ORDER BY rowid"}));
  s.bind(run_id);
  std::vector<ExampleRecord> out;
  while (s.step()) {
    ExampleRecord& e = out.emplace_back();
    e.dataset = s.text(0);
    e.example_id = s.text(1);
    e.prompt_hash = s.text(2);
    e.prompt_tokens = s.int64(3);
    e.new_tokens = s.int64(4);
    e.prediction = s.text(5);
    e.references = parse_references(*db_, s.text(6));
    e.scores = parse_scores(*db_, s.text(7));
    e.ttft_ms = s.real(8);
    e.latency_ms = s.real(9);
    e.prefill_tok_s = s.real(10);
    e.decode_ms_per_token = s.real(11);
    e.peak_host_bytes = s.int64(12);
    e.kv_bytes = s.int64(13);
    e.peak_device_bytes = s.int64(14);
  }
  return out;
}

void RunStore::finish_run(int64_t run_id, const std::string& status, const std::string& message,
                          const std::vector<MetricRecord>& metrics) {
  db_->write([&] {
    db_->prepare("UPDATE runs SET status = ?2, message = ?3, finished_at = ?4 WHERE id = ?1")
        .bind(run_id, status, message, utc_now())
        .run();
    if (db_->changes() == 0) fail("no run ", run_id, " in ", path_);
    db_->prepare("DELETE FROM metrics WHERE run_id = ?1").bind(run_id).run();
    Statement insert = db_->prepare(
        "INSERT INTO metrics(run_id, scope, name, value) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT(run_id, scope, name) DO UPDATE SET value = excluded.value");
    for (const MetricRecord& m : metrics) insert.reset().bind(run_id, m.scope, m.name, m.value).run();
  });
}

RunRecord RunStore::get_run(int64_t run_id) const {
  return db_->read([&] {
    Statement s = db_->prepare(sql({kSelectRun, "WHERE r.id = ?1"}));
    s.bind(run_id);
    if (!s.step()) fail("no run ", run_id, " in ", path_);
    RunRecord run = read_run(s);
    run.params = read_params(*db_, run.id);
    return run;
  });
}

std::vector<MetricRecord> RunStore::metrics(int64_t run_id) const { return read_metrics(*db_, run_id); }

std::vector<RunSummary> RunStore::run_summaries(const RunFilter& filter) const {
  // The params filter travels as one JSON object, so the SQL text stays fixed for any number of params.
  const std::string wanted_params = nlohmann::json(filter.params).dump();
  return db_->read([&] {
    Statement s = db_->prepare(sql(
        {kSelectRun,
         "WHERE (?1 = '' OR e.name = ?1) AND (?2 = '' OR r.status = ?2) AND NOT EXISTS ("
         "  SELECT 1 FROM json_each(?3) f WHERE NOT EXISTS ("
         "    SELECT 1 FROM params p WHERE p.run_id = r.id AND p.key = f.key AND p.value = f.value)) "
         "ORDER BY r.id"}));
    s.bind(filter.experiment, filter.status, wanted_params);
    std::vector<RunSummary> out;
    while (s.step()) {
      RunSummary& summary = out.emplace_back();
      summary.run = read_run(s);
      summary.run.params = read_params(*db_, summary.run.id);
      summary.metrics = read_metrics(*db_, summary.run.id);
    }
    return out;
  });
}

int64_t RunStore::add_artifact(const ArtifactRecord& a) {
  const std::string created_at = a.created_at.empty() ? utc_now() : a.created_at;
  return db_->write([&] {
    db_->prepare("INSERT INTO artifacts(experiment_id, run_id, kind, path, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(a.experiment_id, a.run_id, a.kind, a.path, created_at)
        .run();
    return db_->last_insert_rowid();
  });
}

std::vector<ArtifactRecord> RunStore::artifacts(int64_t experiment_id) const {
  Statement s = db_->prepare(
      "SELECT id, experiment_id, run_id, kind, path, created_at FROM artifacts WHERE experiment_id = ?1 ORDER BY id");
  s.bind(experiment_id);
  std::vector<ArtifactRecord> out;
  while (s.step()) out.push_back({s.int64(0), s.int64(1), s.optional_int64(2), s.text(3), s.text(4), s.text(5)});
  return out;
}

int64_t RunStore::merge_from(const std::string& other_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(other_path, ec)) fail("run store ", path_, ": cannot merge ", other_path, ": no such file");
  if (fs::equivalent(other_path, path_, ec)) fail("run store ", path_, ": cannot merge a store into itself");
  { RunStore source(other_path, options_); }  // refuses non-stores and newer schemas, migrates older ones

  // ATTACH cannot run inside a transaction, so it brackets the one that copies.
  db_->retry([&] { db_->prepare("ATTACH DATABASE ?1 AS src").bind(other_path).run(); });
  struct Detach {
    const Db& db;
    ~Detach() { sqlite3_exec(db.handle(), "DETACH DATABASE src", nullptr, nullptr, nullptr); }
  } detach{*db_};

  return db_->write([&] {
    db_->exec("INSERT OR IGNORE INTO main.experiments(name, config, created_at) "
              "SELECT name, config, created_at FROM src.experiments ORDER BY id");
    Statement runs = db_->prepare(
        "SELECT r.id, m.id, r.config_hash, r.started_at, r.rerun_of FROM src.runs r "
        "JOIN src.experiments s ON s.id = r.experiment_id JOIN main.experiments m ON m.name = s.name ORDER BY r.id");
    // The n-th src run with a key matches the n-th main run with it (by id): runs that were there
    // before come first, so a shard holding several runs with one key copies them all, and once.
    Statement existing = db_->prepare(
        "SELECT id FROM main.runs WHERE experiment_id = ?1 AND config_hash = ?2 AND started_at = ?3 "
        "ORDER BY id LIMIT 1 OFFSET ?4");
    std::map<std::tuple<int64_t, std::string, std::string>, int64_t> seen;  // key -> src runs so far
    Statement insert_run = db_->prepare(sql({"INSERT INTO main.runs(experiment_id, rerun_of, ", kRunCopiedColumns,
                                             ") SELECT ?2, ?3, ", kRunCopiedColumns, " FROM src.runs WHERE id = ?1"}));
    // Each copies the rows of src run ?1 into main run ?2, in their insertion order.
    std::array<Statement, 3> copy_rows = {
        db_->prepare("INSERT INTO main.params(run_id, key, value) "
                     "SELECT ?2, key, value FROM src.params WHERE run_id = ?1 ORDER BY rowid"),
        db_->prepare("INSERT INTO main.metrics(run_id, scope, name, value) "
                     "SELECT ?2, scope, name, value FROM src.metrics WHERE run_id = ?1 ORDER BY rowid"),
        db_->prepare(sql({"INSERT INTO main.examples(run_id, ", kExampleColumns, ") SELECT ?2, ", kExampleColumns,
                          " FROM src.examples WHERE run_id = ?1 ORDER BY rowid"})),
    };

    std::map<int64_t, int64_t> run_ids;  // src id -> main id, for rerun_of and artifacts
    auto mapped = [&](std::optional<int64_t> src_id) -> std::optional<int64_t> {
      if (!src_id) return std::nullopt;
      auto it = run_ids.find(*src_id);
      return it == run_ids.end() ? std::nullopt : std::optional<int64_t>(it->second);
    };
    int64_t copied = 0;
    while (runs.step()) {
      const int64_t src_id = runs.int64(0), experiment_id = runs.int64(1);
      const int64_t occurrence = seen[{experiment_id, runs.text(2), runs.text(3)}]++;
      if (existing.reset().bind(experiment_id, runs.text(2), runs.text(3), occurrence).step()) {
        run_ids[src_id] = existing.int64(0);
        continue;
      }
      insert_run.reset().bind(src_id, experiment_id, mapped(runs.optional_int64(4))).run();
      const int64_t id = db_->last_insert_rowid();
      run_ids[src_id] = id;
      for (Statement& copy : copy_rows) copy.reset().bind(src_id, id).run();
      ++copied;
    }

    Statement artifacts = db_->prepare(
        "SELECT m.id, a.run_id, a.kind, a.path, a.created_at FROM src.artifacts a "
        "JOIN src.experiments s ON s.id = a.experiment_id JOIN main.experiments m ON m.name = s.name ORDER BY a.id");
    Statement insert_artifact = db_->prepare(
        "INSERT INTO main.artifacts(experiment_id, run_id, kind, path, created_at) "
        "SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM main.artifacts WHERE experiment_id = ?1 "
        "AND run_id IS ?2 AND kind = ?3 AND path = ?4 AND created_at = ?5)");
    while (artifacts.step())
      insert_artifact.reset()
          .bind(artifacts.int64(0), mapped(artifacts.optional_int64(1)), artifacts.text(2), artifacts.text(3),
                artifacts.text(4))
          .run();
    return copied;
  });
}

std::string hash_hex(const std::string& text) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;  // FNV-1a 64 prime
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016" PRIx64, h);
  return out;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

}  // namespace ctx::store
