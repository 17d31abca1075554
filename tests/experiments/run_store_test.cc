// The SQLite run store against real files: round trips, queries, schema versions and migration,
// refusal of foreign files, concurrent writers in separate processes, durability after a kill, and
// merging shard files.
#include "experiments/store/run_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "tests/support/error_of.h"

namespace ctx::store {
namespace {

namespace fs = std::filesystem;

// A unique directory per test, removed afterwards.
class RunStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("ctxlab_run_store_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// A raw connection, for what RunStore deliberately cannot do (old schemas, foreign files, locks).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) ADD_FAILURE() << "cannot open " << path;
  }
  ~RawDb() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) ADD_FAILURE() << sql << ": " << error;
    sqlite3_free(error);
  }
  // The rows of a query, each as its columns joined by '|'.
  std::vector<std::string> rows(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
        if (c) row += '|';
        row += text ? text : "NULL";
      }
      out.push_back(row);
    }
    sqlite3_finalize(s);
    return out;
  }
  std::string value(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() ? "" : r.front();
  }

 private:
  sqlite3* db_ = nullptr;
};

// Columns, foreign keys and indexes of every table: equal for two stores with the same schema.
std::vector<std::string> schema_of(const std::string& path) {
  RawDb db(path);
  std::vector<std::string> out;
  for (const char* sql :
       {"SELECT m.name, c.name, c.type, c.\"notnull\", c.dflt_value, c.pk FROM sqlite_master m, "
        "pragma_table_info(m.name) c WHERE m.type = 'table' ORDER BY m.name, c.cid",
        "SELECT m.name, f.\"table\", f.\"from\", f.\"to\", f.on_delete FROM sqlite_master m, "
        "pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq",
        "SELECT m.name, i.name, i.\"unique\", c.name FROM sqlite_master m, pragma_index_list(m.name) i, "
        "pragma_index_info(i.name) c WHERE m.type = 'table' ORDER BY m.name, i.name, c.seqno"}) {
    for (auto& row : db.rows(sql)) out.push_back(row);
  }
  return out;
}

RunRecord make_run(int64_t experiment_id, const std::string& config, std::map<std::string, std::string> params = {}) {
  RunRecord r;
  r.experiment_id = experiment_id;
  r.trial_index = 3;
  r.config = config;
  r.env = {"abc123", "g++ 12.2", "EPYC", "H100", "550.54", "node7"};
  r.seed = 42;
  r.params = std::move(params);
  return r;
}

ExampleRecord make_example(const std::string& dataset, const std::string& id, double f1) {
  ExampleRecord e;
  e.dataset = dataset;
  e.example_id = id;
  e.prompt_hash = hash_hex("prompt " + id);
  e.prompt_tokens = 4096;
  e.new_tokens = 17;
  e.prediction = "the \"answer\" to " + id + "\n";
  e.references = {"answer one", "réponse 2"};
  e.scores = {{"f1", f1}, {"em", 1.0}};
  e.ttft_ms = 12.5;
  e.latency_ms = 250.25;
  e.prefill_tok_s = 3210.5;
  e.decode_ms_per_token = 14.0625;
  e.peak_host_bytes = int64_t{5} << 32;
  e.kv_bytes = 123456789;
  return e;
}

// Runs `body` in a forked child; returns its exit status (the child exits 0 if body returns, 1 on an
// exception). The child ends with _exit so it runs no destructors of the parent's objects.
pid_t spawn(const std::function<void()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
      code = 1;
    }
    _exit(code);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(RunStoreFunctions, HashHexIsFnv1a64) {
  EXPECT_EQ(hash_hex(""), "cbf29ce484222325");
  EXPECT_EQ(hash_hex("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(hash_hex("foobar"), "85944171f73967e8");
}

TEST(RunStoreFunctions, UtcNowIsIso8601Utc) {
  const std::string now = utc_now();
  ASSERT_EQ(now.size(), 20u) << now;
  EXPECT_EQ(now[4], '-');
  EXPECT_EQ(now[10], 'T');
  EXPECT_EQ(now[19], 'Z');
  EXPECT_GE(now.substr(0, 4), "2024");
}

TEST_F(RunStoreTest, FreshStoreIsCurrentVersionInWalMode) {
  const std::string path = file("fresh.db");
  {
    RunStore store(path);
    EXPECT_EQ(store.path(), path);
    EXPECT_EQ(store.schema_version(), 3);
    EXPECT_EQ(kRunStoreSchemaVersion, 3);
  }
  RawDb db(path);
  EXPECT_EQ(db.value("PRAGMA user_version"), "3");
  EXPECT_EQ(db.value("PRAGMA journal_mode"), "wal");
}

TEST_F(RunStoreTest, RoundTripOfExperimentsRunsParamsMetricsExamplesArtifacts) {
  const std::string path = file("round.db");
  int64_t exp_id = 0, run_id = 0;
  {
    RunStore store(path);
    exp_id = store.ensure_experiment("needle", R"({"model":"llama"})");
    EXPECT_EQ(store.ensure_experiment("needle", R"({"other":1})"), exp_id);  // keeps its config
    const int64_t other = store.ensure_experiment("sweep", "{}");
    EXPECT_NE(other, exp_id);
    EXPECT_EQ(store.find_experiment("needle"), exp_id);
    EXPECT_EQ(store.find_experiment("nope"), std::nullopt);
    EXPECT_EQ(store.experiments(), (std::vector<std::pair<int64_t, std::string>>{{exp_id, "needle"}, {other, "sweep"}}));

    run_id = store.begin_run(make_run(exp_id, R"({"kv":"l2norm"})", {{"kv", "l2norm"}, {"context_length", "4096"}}));
    store.add_example(run_id, make_example("narrativeqa", "q1", 0.5));
    store.add_example(run_id, make_example("hotpotqa", "h7", 0.25));
    store.finish_run(run_id, "ok", "", {{"", "ttft_ms", 12.5}, {"narrativeqa", "f1", 0.5}, {"", "nan", NAN}});
    ArtifactRecord a;
    a.experiment_id = exp_id;
    a.run_id = run_id;
    a.kind = "plot:pareto";
    a.path = "plots/pareto.svg";
    const int64_t art = store.add_artifact(a);
    a.run_id.reset();
    a.kind = "table";
    a.created_at = "2024-05-01T10:00:00Z";
    store.add_artifact(a);
    EXPECT_GT(art, 0);
  }
  RunStore store(path);  // everything below is read back from the file
  const RunRecord run = store.get_run(run_id);
  EXPECT_EQ(run.id, run_id);
  EXPECT_EQ(run.experiment_id, exp_id);
  EXPECT_EQ(run.experiment, "needle");
  EXPECT_EQ(run.trial_index, 3);
  EXPECT_EQ(run.config, R"({"kv":"l2norm"})");
  EXPECT_EQ(run.config_hash, hash_hex(R"({"kv":"l2norm"})"));  // empty hash -> hash of the config
  EXPECT_EQ(run.status, "ok");
  EXPECT_EQ(run.message, "");
  EXPECT_EQ(run.started_at.size(), 20u);
  EXPECT_GE(run.finished_at, run.started_at);
  EXPECT_EQ(run.env.git_commit, "abc123");
  EXPECT_EQ(run.env.compiler, "g++ 12.2");
  EXPECT_EQ(run.env.cpu, "EPYC");
  EXPECT_EQ(run.env.gpu, "H100");
  EXPECT_EQ(run.env.driver, "550.54");
  EXPECT_EQ(run.env.host, "node7");
  EXPECT_EQ(run.seed, 42);
  EXPECT_EQ(run.rerun_of, std::nullopt);
  EXPECT_EQ(run.params, (std::map<std::string, std::string>{{"kv", "l2norm"}, {"context_length", "4096"}}));

  const auto metrics = store.metrics(run_id);  // by scope, then insertion
  ASSERT_EQ(metrics.size(), 3u);
  EXPECT_EQ(metrics[0].scope, "");
  EXPECT_EQ(metrics[0].name, "ttft_ms");
  EXPECT_EQ(metrics[0].value, 12.5);
  EXPECT_EQ(metrics[1].name, "nan");
  EXPECT_TRUE(std::isnan(metrics[1].value));
  EXPECT_EQ(metrics[2].scope, "narrativeqa");
  EXPECT_EQ(metrics[2].value, 0.5);

  const auto examples = store.examples(run_id);
  ASSERT_EQ(examples.size(), 2u);
  const ExampleRecord want = make_example("narrativeqa", "q1", 0.5);
  const ExampleRecord& got = examples[0];
  EXPECT_EQ(got.dataset, want.dataset);
  EXPECT_EQ(got.example_id, want.example_id);
  EXPECT_EQ(got.prompt_hash, want.prompt_hash);
  EXPECT_EQ(got.prompt_tokens, 4096);
  EXPECT_EQ(got.new_tokens, 17);
  EXPECT_EQ(got.prediction, want.prediction);
  EXPECT_EQ(got.references, want.references);
  EXPECT_EQ(got.scores, want.scores);
  EXPECT_EQ(got.ttft_ms, 12.5);
  EXPECT_EQ(got.latency_ms, 250.25);
  EXPECT_EQ(got.prefill_tok_s, 3210.5);
  EXPECT_EQ(got.decode_ms_per_token, 14.0625);
  EXPECT_EQ(got.peak_host_bytes, int64_t{5} << 32);
  EXPECT_EQ(got.kv_bytes, 123456789);
  EXPECT_EQ(examples[1].example_id, "h7");
  EXPECT_EQ(examples[1].scores.at("f1"), 0.25);
  EXPECT_EQ(store.example_keys(run_id),
            (std::vector<std::pair<std::string, std::string>>{{"narrativeqa", "q1"}, {"hotpotqa", "h7"}}));

  const auto artifacts = store.artifacts(exp_id);
  ASSERT_EQ(artifacts.size(), 2u);
  EXPECT_EQ(artifacts[0].experiment_id, exp_id);
  EXPECT_EQ(artifacts[0].run_id, run_id);
  EXPECT_EQ(artifacts[0].kind, "plot:pareto");
  EXPECT_EQ(artifacts[0].path, "plots/pareto.svg");
  EXPECT_EQ(artifacts[0].created_at.size(), 20u);
  EXPECT_EQ(artifacts[1].run_id, std::nullopt);
  EXPECT_EQ(artifacts[1].created_at, "2024-05-01T10:00:00Z");
  EXPECT_TRUE(store.artifacts(exp_id + 100).empty());

  EXPECT_EQ(test::error_of([&] { store.get_run(999); }), "no run 999 in " + path);
}

TEST_F(RunStoreTest, FindRunReturnsTheLatestRunWithTheHash) {
  RunStore store(file("find.db"));
  const int64_t exp = store.ensure_experiment("e", "{}");
  const int64_t other_exp = store.ensure_experiment("f", "{}");
  RunRecord r = make_run(exp, "{a}");
  r.config_hash = "h1";
  const int64_t first = store.begin_run(r);
  const int64_t second = store.begin_run(r);  // same second: the higher id is the later run
  r.config_hash = "h2";
  store.begin_run(r);
  r.config_hash = "h1";
  r.experiment_id = other_exp;
  store.begin_run(r);
  EXPECT_GT(second, first);
  const auto found = store.find_run(exp, "h1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, second);
  EXPECT_EQ(found->experiment, "e");
  EXPECT_EQ(found->status, "running");
  EXPECT_EQ(found->finished_at, "");
  EXPECT_EQ(store.find_run(exp, "h3"), std::nullopt);
}

TEST_F(RunStoreTest, AddExampleReplacesTheSameKey) {
  RunStore store(file("replace.db"));
  const int64_t run = store.begin_run(make_run(store.ensure_experiment("e", "{}"), "{}"));
  const int64_t other = store.begin_run(make_run(store.ensure_experiment("e", "{}"), "{}"));
  store.add_example(run, make_example("d", "1", 0.1));
  store.add_example(run, make_example("d", "2", 0.2));
  store.add_example(other, make_example("d", "1", 0.9));  // another run: not a replacement
  store.add_example(run, make_example("d", "1", 0.7));
  const auto examples = store.examples(run);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].example_id, "2");
  EXPECT_EQ(examples[1].example_id, "1");
  EXPECT_EQ(examples[1].scores.at("f1"), 0.7);
  EXPECT_EQ(store.examples(other).size(), 1u);
  EXPECT_NE(test::error_of([&] { store.add_example(12345, make_example("d", "1", 0)); }).find(file("replace.db")),
            std::string::npos);
}

TEST_F(RunStoreTest, FinishRunReplacesMetrics) {
  RunStore store(file("finish.db"));
  const int64_t run = store.begin_run(make_run(store.ensure_experiment("e", "{}"), "{}"));
  store.finish_run(run, "failed", "out of patience", {{"", "a", 1}, {"", "b", 2}});
  store.finish_run(run, "oom", "cudaMalloc failed", {{"x", "c", 3}, {"", "a", 4}, {"", "a", 5}});
  const RunRecord r = store.get_run(run);
  EXPECT_EQ(r.status, "oom");
  EXPECT_EQ(r.message, "cudaMalloc failed");
  const auto m = store.metrics(run);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].scope, "");
  EXPECT_EQ(m[0].name, "a");
  EXPECT_EQ(m[0].value, 5);  // the last of a repeated (scope, name)
  EXPECT_EQ(m[1].scope, "x");
  EXPECT_EQ(m[1].value, 3);
  EXPECT_EQ(test::error_of([&] { store.finish_run(run + 7, "ok", "", {}); }),
            "no run " + std::to_string(run + 7) + " in " + file("finish.db"));
}

TEST_F(RunStoreTest, RunSummariesFilterByExperimentStatusAndParams) {
  RunStore store(file("summaries.db"));
  const int64_t a = store.ensure_experiment("a", "{}");
  const int64_t b = store.ensure_experiment("b", "{}");
  const int64_t r1 = store.begin_run(make_run(a, "1", {{"kv", "l2norm"}, {"quant", "int8"}}));
  const int64_t r2 = store.begin_run(make_run(a, "2", {{"kv", "l2norm"}, {"quant", "nf4"}}));
  const int64_t r3 = store.begin_run(make_run(a, "3", {{"kv", "snapkv"}, {"quant", "int8"}}));
  const int64_t r4 = store.begin_run(make_run(b, "4", {{"kv", "l2norm"}, {"quant", "int8"}}));
  store.finish_run(r1, "ok", "", {{"", "f1", 0.4}, {"hotpotqa", "f1", 0.3}});
  store.finish_run(r2, "oom", "", {});
  store.finish_run(r3, "ok", "", {{"", "f1", 0.6}});

  auto ids = [&](const RunFilter& f) {
    std::vector<int64_t> out;
    for (const RunSummary& s : store.run_summaries(f)) out.push_back(s.run.id);
    return out;
  };
  EXPECT_EQ(ids({}), (std::vector<int64_t>{r1, r2, r3, r4}));
  EXPECT_EQ(ids({"a", "", {}}), (std::vector<int64_t>{r1, r2, r3}));
  EXPECT_EQ(ids({"", "ok", {}}), (std::vector<int64_t>{r1, r3}));
  EXPECT_EQ(ids({"", "running", {}}), (std::vector<int64_t>{r4}));
  EXPECT_EQ(ids({"", "", {{"kv", "l2norm"}}}), (std::vector<int64_t>{r1, r2, r4}));
  EXPECT_EQ(ids({"", "", {{"kv", "l2norm"}, {"quant", "int8"}}}), (std::vector<int64_t>{r1, r4}));
  EXPECT_EQ(ids({"a", "ok", {{"quant", "int8"}}}), (std::vector<int64_t>{r1, r3}));
  EXPECT_EQ(ids({"", "", {{"kv", "h2o"}}}), std::vector<int64_t>{});
  EXPECT_EQ(ids({"", "", {{"batch_size", "1"}}}), std::vector<int64_t>{});
  EXPECT_EQ(ids({"c", "", {}}), std::vector<int64_t>{});

  const auto s = store.run_summaries({"a", "ok", {{"kv", "l2norm"}}});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].run.experiment, "a");
  EXPECT_EQ(s[0].run.params.at("quant"), "int8");
  EXPECT_EQ(s[0].metric("f1"), 0.4);
  EXPECT_EQ(s[0].metric("f1", "hotpotqa"), 0.3);
  EXPECT_EQ(s[0].metric("rouge"), std::nullopt);
}

TEST_F(RunStoreTest, QueriesUseIndexes) {
  const std::string path = file("plan.db");
  { RunStore store(path); }
  RawDb db(path);
  for (const char* query :
       {"SELECT * FROM runs WHERE experiment_id = 1", "SELECT * FROM runs WHERE experiment_id = 1 AND config_hash = 'x'",
        "SELECT * FROM metrics WHERE run_id = 1", "SELECT * FROM examples WHERE run_id = 1",
        "SELECT * FROM params WHERE run_id = 1", "SELECT * FROM params WHERE key = 'kv' AND value = 'x'",
        "SELECT * FROM artifacts WHERE experiment_id = 1"}) {
    const std::string plan = db.value(std::string("EXPLAIN QUERY PLAN ") + query);
    EXPECT_NE(plan.find("USING"), std::string::npos) << query << ": " << plan;
    EXPECT_EQ(plan.find("SCAN"), std::string::npos) << query << ": " << plan;
  }
}

// The first released schema, frozen here as files of version 1 have it (independent of the
// migration code, which must keep reading such files).
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE experiments(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, config TEXT NOT NULL,
  created_at TEXT NOT NULL);
CREATE TABLE runs(id INTEGER PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  trial_index INTEGER NOT NULL, config TEXT NOT NULL, config_hash TEXT NOT NULL, status TEXT NOT NULL,
  message TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, git_commit TEXT NOT NULL,
  compiler TEXT NOT NULL, cpu TEXT NOT NULL, gpu TEXT NOT NULL, driver TEXT NOT NULL, host TEXT NOT NULL,
  seed INTEGER NOT NULL);
CREATE TABLE params(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL,
  value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE metrics(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, scope TEXT NOT NULL,
  name TEXT NOT NULL, value REAL, UNIQUE (run_id, scope, name));
CREATE TABLE examples(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, dataset TEXT NOT NULL,
  example_id TEXT NOT NULL, prompt_hash TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
  new_tokens INTEGER NOT NULL, prediction TEXT NOT NULL, "references" TEXT NOT NULL, scores TEXT NOT NULL,
  ttft_ms REAL, latency_ms REAL, prefill_tok_s REAL, decode_ms_per_token REAL,
  peak_host_bytes INTEGER NOT NULL, kv_bytes INTEGER NOT NULL, UNIQUE (run_id, dataset, example_id));
PRAGMA user_version = 1;
INSERT INTO experiments VALUES (1, 'old', '{"v":1}', '2023-01-02T03:04:05Z');
INSERT INTO runs VALUES (1, 1, 0, '{"kv":"none"}', 'abcd', 'ok', '', '2023-01-02T03:04:06Z',
  '2023-01-02T03:05:00Z', 'deadbeef', 'gcc', 'cpu', '', '', 'host', 7);
INSERT INTO params VALUES (1, 'kv', 'none');
INSERT INTO metrics VALUES (1, '', 'f1', 0.75);
INSERT INTO examples VALUES (1, 'nq', 'e1', 'ph', 10, 2, 'yes', '["yes"]', '{"em":1.0}', 1, 2, 3, 4, 5, 6);
)sql";

TEST_F(RunStoreTest, MigratesAVersion1File) {
  const std::string path = file("v1.db");
  RawDb(path).exec(kVersion1Schema);
  RunStore store(path);
  EXPECT_EQ(store.schema_version(), 3);
  EXPECT_EQ(RawDb(path).value("PRAGMA user_version"), "3");

  const RunRecord old = store.get_run(1);
  EXPECT_EQ(old.experiment, "old");
  EXPECT_EQ(old.config_hash, "abcd");
  EXPECT_EQ(old.env.git_commit, "deadbeef");
  EXPECT_EQ(old.seed, 7);
  EXPECT_EQ(old.rerun_of, std::nullopt);
  EXPECT_EQ(old.params.at("kv"), "none");
  EXPECT_EQ(store.metrics(1).at(0).value, 0.75);
  const auto examples = store.examples(1);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].references, std::vector<std::string>{"yes"});
  EXPECT_EQ(examples[0].scores.at("em"), 1.0);
  EXPECT_EQ(examples[0].kv_bytes, 6);
  EXPECT_EQ(examples[0].peak_device_bytes, 0);  // version 3's column, defaulted for old rows
  EXPECT_EQ(store.find_run(1, "abcd")->id, 1);

  // Version 3's column round-trips on the migrated file.
  ExampleRecord gpu = examples[0];
  gpu.example_id = "e2";
  gpu.peak_device_bytes = int64_t(14) << 30;
  store.add_example(1, gpu);
  EXPECT_EQ(store.examples(1).at(1).peak_device_bytes, int64_t(14) << 30);

  // The columns and table of version 2 work on the migrated file.
  RunRecord rerun = make_run(1, R"({"kv":"none"})");
  rerun.rerun_of = 1;
  const int64_t again = store.begin_run(rerun);
  EXPECT_EQ(store.get_run(again).rerun_of, 1);
  ArtifactRecord a;
  a.experiment_id = 1;
  a.run_id = again;
  a.kind = "plot:sweep";
  a.path = "sweep.png";
  store.add_artifact(a);
  ASSERT_EQ(store.artifacts(1).size(), 1u);
  EXPECT_EQ(store.artifacts(1)[0].path, "sweep.png");

  // Migrating the frozen version 1 gives exactly the schema of a new store.
  { RunStore fresh(file("fresh.db")); }
  EXPECT_EQ(schema_of(path), schema_of(file("fresh.db")));
  EXPECT_GT(schema_of(path).size(), 50u);
}

TEST_F(RunStoreTest, RefusesANewerSchema) {
  const std::string path = file("newer.db");
  { RunStore store(path); }
  RawDb(path).exec("PRAGMA user_version = 4");
  EXPECT_EQ(test::error_of([&] { RunStore store(path); }),
            "run store " + path + ": schema version 4 is newer than this ctxlab reads (3); use a newer ctxlab");
  EXPECT_EQ(RawDb(path).value("PRAGMA user_version"), "4");
}

TEST_F(RunStoreTest, RefusesAFileThatIsNotSqlite) {
  const std::string path = file("garbage.db");
  const std::string text(4096, 'x');
  std::ofstream(path) << text;
  const std::string error = test::error_of([&] { RunStore store(path); });
  EXPECT_EQ(error.rfind("run store " + path + ": not a SQLite database", 0), 0u) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), text);  // untouched
}

TEST_F(RunStoreTest, RefusesASqliteFileThatIsNotAStore) {
  const std::string path = file("other.db");
  RawDb(path).exec("CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT)");
  EXPECT_EQ(test::error_of([&] { RunStore store(path); }),
            "run store " + path + ": not a ctxlab run store (it has tables but no schema version)");
  RawDb db(path);
  EXPECT_EQ(db.value("PRAGMA journal_mode"), "delete");  // not switched to WAL either
  EXPECT_EQ(db.value("PRAGMA user_version"), "0");
}

TEST_F(RunStoreTest, RefusesAnUnopenablePath) {
  const std::string path = file("no/such/dir/x.db");
  EXPECT_EQ(test::error_of([&] { RunStore store(path); }).rfind("run store " + path + ": cannot open", 0), 0u);
}

TEST_F(RunStoreTest, TwoProcessesWriteConcurrently) {
  const std::string path = file("shared.db");  // created by whichever child comes first
  constexpr int kExamples = 200;
  int start[2];  // both children wait on this pipe, so they open, create and write at the same time
  ASSERT_EQ(pipe(start), 0);
  auto writer = [&](const std::string& name) {
    return [&path, &start, name] {
      close(start[1]);
      char go;
      if (read(start[0], &go, 1) != 1) throw std::runtime_error("no start signal");
      RunStore store(path);
      const int64_t exp = store.ensure_experiment("concurrent", "{}");
      const int64_t run = store.begin_run(make_run(exp, name));
      for (int i = 0; i < kExamples; ++i) store.add_example(run, make_example("d", name + std::to_string(i), i));
      store.finish_run(run, "ok", "", {{"", "n", kExamples}});
    };
  };
  const pid_t a = spawn(writer("a"));
  const pid_t b = spawn(writer("b"));
  close(start[0]);
  EXPECT_EQ(write(start[1], "gg", 2), 2);
  close(start[1]);
  EXPECT_EQ(wait_exit_code(a), 0);
  EXPECT_EQ(wait_exit_code(b), 0);

  RunStore store(path);
  ASSERT_EQ(store.experiments().size(), 1u);
  const auto runs = store.run_summaries({"concurrent", "ok", {}});
  ASSERT_EQ(runs.size(), 2u);
  size_t total = 0;
  for (const RunSummary& s : runs) {
    const auto examples = store.examples(s.run.id);
    EXPECT_EQ(examples.size(), size_t{kExamples});
    for (const ExampleRecord& e : examples) EXPECT_EQ(e.example_id.substr(0, 1), s.run.config);
    total += examples.size();
  }
  EXPECT_EQ(total, 2u * kExamples);
  EXPECT_EQ(RawDb(path).value("SELECT count(*) FROM examples"), "400");
}

TEST_F(RunStoreTest, KilledWriterKeepsEveryCommittedExample) {
  const std::string path = file("killed.db");
  constexpr int kCommitted = 37;
  const pid_t child = spawn([&] {
    RunStore store(path);
    const int64_t run = store.begin_run(make_run(store.ensure_experiment("e", "{}"), "{}"));
    for (int i = 0; i < kCommitted; ++i) store.add_example(run, make_example("d", std::to_string(i), 0));
    _exit(137);  // no destructor, no checkpoint: the examples live only in the WAL
  });
  ASSERT_EQ(wait_exit_code(child), 137);
  EXPECT_TRUE(fs::exists(path + "-wal"));
  RunStore store(path);
  const auto keys = store.example_keys(1);
  ASSERT_EQ(keys.size(), size_t{kCommitted});
  EXPECT_EQ(keys.back().second, std::to_string(kCommitted - 1));
  EXPECT_EQ(store.get_run(1).status, "running");
}

TEST_F(RunStoreTest, WriteRetriesUntilTheLockIsFree) {
  const std::string path = file("locked.db");
  RunStore store(path, {.busy_timeout_ms = 20, .transaction_attempts = 50});
  const int64_t run = store.begin_run(make_run(store.ensure_experiment("e", "{}"), "{}"));
  RawDb other(path);
  other.exec("BEGIN IMMEDIATE");  // another writer holds the lock for a while
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    other.exec("COMMIT");
  });
  store.add_example(run, make_example("d", "1", 0));  // waits past several busy timeouts
  release.join();
  EXPECT_EQ(store.examples(run).size(), 1u);
}

TEST_F(RunStoreTest, WriteGivesUpOnALockThatStaysHeld) {
  const std::string path = file("held.db");
  RunStore store(path, {.busy_timeout_ms = 10, .transaction_attempts = 3});
  const int64_t run = store.begin_run(make_run(store.ensure_experiment("e", "{}"), "{}"));
  RawDb other(path);
  other.exec("BEGIN IMMEDIATE");
  const std::string error = test::error_of([&] { store.add_example(run, make_example("d", "1", 0)); });
  EXPECT_EQ(error.rfind("run store " + path + ": BEGIN IMMEDIATE failed: database is locked", 0), 0u) << error;
  EXPECT_NE(error.find("gave up after 3 attempts"), std::string::npos) << error;
  other.exec("ROLLBACK");
  store.add_example(run, make_example("d", "1", 0));  // usable again once the lock is free
  EXPECT_EQ(store.examples(run).size(), 1u);
}

TEST_F(RunStoreTest, MergeShardsIntoOneStore) {
  // Two shards of one sweep, written apart; shard b also has an experiment of its own and a rerun.
  const std::string a = file("a.db"), b = file("b.db"), merged = file("merged.db");
  {
    RunStore s(a);
    const int64_t e = s.ensure_experiment("sweep", R"({"grid":1})");
    const int64_t r = s.begin_run(make_run(e, "cfg-a", {{"kv", "l2norm"}}));
    s.add_example(r, make_example("d", "1", 0.1));
    s.add_example(r, make_example("d", "2", 0.2));
    s.finish_run(r, "ok", "", {{"", "f1", 0.15}});
    s.add_artifact({0, e, r, "plot:pareto", "a.svg", ""});
  }
  int64_t b_first = 0;
  {
    RunStore s(b);
    const int64_t solo = s.ensure_experiment("solo", "{}");  // id 1 in b, not in a
    const int64_t e = s.ensure_experiment("sweep", R"({"grid":1})");
    b_first = s.begin_run(make_run(solo, "cfg-solo"));
    const int64_t r = s.begin_run(make_run(e, "cfg-b", {{"kv", "snapkv"}}));
    s.add_example(r, make_example("d", "3", 0.3));
    s.finish_run(r, "ok", "", {{"", "f1", 0.3}, {"d", "f1", 0.3}});
    RunRecord rerun = make_run(e, "cfg-b");
    rerun.rerun_of = r;
    const int64_t again = s.begin_run(rerun);
    s.add_example(again, make_example("d", "3", 0.35));
  }
  // All of b's runs started in one second: the rerun has the same merge key as the run it reruns.
  RawDb(b).exec("UPDATE runs SET started_at = '2024-01-01T00:00:00Z'");

  RunStore store(merged);
  store.ensure_experiment("unrelated", "{}");
  EXPECT_EQ(store.merge_from(a), 1);
  EXPECT_EQ(store.merge_from(b), 3);
  EXPECT_EQ(store.merge_from(a), 0);  // already there: nothing copied twice
  EXPECT_EQ(store.merge_from(b), 0);

  const auto experiments = store.experiments();
  ASSERT_EQ(experiments.size(), 3u);
  EXPECT_EQ(experiments[1].second, "sweep");
  EXPECT_EQ(experiments[2].second, "solo");
  const int64_t sweep = experiments[1].first;

  const auto runs = store.run_summaries({"sweep", "", {}});
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].run.config, "cfg-a");
  EXPECT_EQ(runs[0].run.params.at("kv"), "l2norm");
  EXPECT_EQ(runs[0].metric("f1"), 0.15);
  EXPECT_EQ(store.examples(runs[0].run.id).size(), 2u);
  EXPECT_EQ(runs[1].run.config, "cfg-b");
  EXPECT_EQ(runs[1].metrics.size(), 2u);
  EXPECT_EQ(store.examples(runs[1].run.id).at(0).scores.at("f1"), 0.3);
  EXPECT_EQ(runs[2].run.rerun_of, runs[1].run.id);  // remapped from b's ids
  EXPECT_EQ(store.examples(runs[2].run.id).at(0).scores.at("f1"), 0.35);
  EXPECT_EQ(store.run_summaries({"solo", "running", {}}).size(), 1u);
  EXPECT_NE(store.run_summaries({"solo", "", {}}).at(0).run.id, b_first);  // new ids

  RawDb db(merged);
  EXPECT_EQ(db.value("SELECT count(*) FROM runs"), "4");
  EXPECT_EQ(db.value("SELECT count(*) FROM examples"), "4");
  EXPECT_EQ(db.value("SELECT count(*) FROM metrics"), "3");
  EXPECT_EQ(db.value("SELECT count(*) FROM params"), "2");
  const auto artifacts = store.artifacts(sweep);
  ASSERT_EQ(artifacts.size(), 1u);
  EXPECT_EQ(artifacts[0].run_id, runs[0].run.id);
  EXPECT_EQ(artifacts[0].path, "a.svg");

  EXPECT_EQ(test::error_of([&] { store.merge_from(merged); }),
            "run store " + merged + ": cannot merge a store into itself");
  EXPECT_EQ(test::error_of([&] { store.merge_from(file("missing.db")); }),
            "run store " + merged + ": cannot merge " + file("missing.db") + ": no such file");
  std::ofstream(file("junk.db")) << std::string(2048, 'j');
  EXPECT_NE(test::error_of([&] { store.merge_from(file("junk.db")); }).find(file("junk.db") + ": not a SQLite"),
            std::string::npos);
}

}  // namespace
}  // namespace ctx::store
