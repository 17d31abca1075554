// End to end through the ctxlab binary: a tiny config on an HF fixture runs into a real SQLite store,
// is killed mid-run and resumed, reruns identically, exports, and renders a Pareto plot whose data
// file lists the expected front.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "experiments/store/run_store.h"
#include "tests/support/cli_run.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

namespace fs = std::filesystem;

std::string ctxlab_binary() {
  const char* env = std::getenv("CTXLAB_BIN");
  return env && *env ? env : CTXLAB_BIN;
}

test::CliRun ctxlab(const std::string& args) { return test::run_command(ctxlab_binary() + " " + args); }

class RunE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ctxlab_e2e_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_ = (dir_ / "tiny.ini").string();
    db_ = (dir_ / "runs.db").string();
    // 2 kv x 2 quant = 4 trials of 3 needle + 2 closed-book HotpotQA + 2 MMLU examples.
    std::ofstream(config_) << "[experiment]\nname = tiny\nmodel = " << test::shared_path("fixtures/hf/llama")
                           << "\ntokenizer = " << test::shared_path("fixtures/stories260k/tok512.bin")
                           << "\nthreads = 1\nmax_new_tokens = 6\ncontext_lengths = 96\n\n[datasets]\n"
                           << "needle = needle:depths=[0,50,100]\n"
                           << "hotpot = hotpotqa:setting=closed_book,limit=2,root=" << test::shared_path("datasets") << "\n"
                           << "mmlu = mmlu:subjects=[anatomy],shots=0,limit=2,root=" << test::shared_path("datasets") << "\n"
                           << "\n[grid]\nattention = sdpa\nkv = none; l2norm:keep_ratio=0.5,skip_layers=[]\nquant = none; int8\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string config_, db_;
};

TEST_F(RunE2E, RunKillResumeRerunExportPlot) {
  // Dry run: the expanded trial list and the estimated work, nothing stored.
  auto r = ctxlab("run " + config_ + " --db " + db_ + " --dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("4 trials"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("estimated work: 28 examples"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(db_));

  // A kill after 3 committed examples (exit 137 without cleanup) loses nothing committed.
  r = ctxlab("run " + config_ + " --db " + db_ + " --abort-after 3");
  ASSERT_EQ(r.exit_code, 137) << r.out;
  {
    store::RunStore s(db_);
    const auto runs = s.run_summaries();
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].run.status, "running");
    EXPECT_EQ(s.examples(runs[0].run.id).size(), 3u);
  }
  // --resume finishes the interrupted trial (without redoing its 3 examples) and runs the rest.
  r = ctxlab("run " + config_ + " --db " + db_ + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<int64_t> ids;
  {
    store::RunStore s(db_);
    const auto runs = s.run_summaries();
    ASSERT_EQ(runs.size(), 4u) << r.out;
    for (const auto& run : runs) {
      EXPECT_EQ(run.run.status, "ok") << run.run.message;
      const auto ex = s.examples(run.run.id);
      EXPECT_EQ(ex.size(), 7u);
      std::set<std::pair<std::string, std::string>> keys;
      for (const auto& e : ex) keys.insert({e.dataset, e.example_id});
      EXPECT_EQ(keys.size(), 7u);
      ASSERT_TRUE(run.metric("quality").has_value());
      EXPECT_GE(*run.metric("quality"), 0);
      EXPECT_LE(*run.metric("quality"), 100);
      EXPECT_EQ(run.run.params.at("context_length"), "96");
      EXPECT_GT(*run.metric("weight_bytes"), 0);
      ids.push_back(run.run.id);
    }
    // int8 weights are smaller than float32 ones.
    EXPECT_LT(*runs[2].metric("weight_bytes"), *runs[0].metric("weight_bytes"));
  }
  // A second --resume has nothing left to do.
  r = ctxlab("run " + config_ + " --db " + db_ + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("0 trials run (0 ok), 4 already finished"), std::string::npos) << r.out;

  // The resumed run (run 1) and a compressed+quantized one rerun identically.
  for (int64_t id : {ids[0], ids[3]}) {
    r = ctxlab("rerun " + std::to_string(id) + " --db " + db_);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("IDENTICAL"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("examples: 7 identical, 0 different, 0 in one run only"), std::string::npos) << r.out;
  }

  // ls / show / compare read the store.
  r = ctxlab("ls --db " + db_ + " --experiment tiny --where quant=int8");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("3 runs"), std::string::npos) << r.out;  // runs 3 and 4, and the rerun of 4
  r = ctxlab("show " + std::to_string(ids[1]) + " --db " + db_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("l2norm@"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("git commit"), std::string::npos) << r.out;
  r = ctxlab("compare " + std::to_string(ids[0]) + " " + std::to_string(ids[2]) + " --db " + db_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("weight_bytes"), std::string::npos) << r.out;

  // Export: one row per run and scope with the seeds' fields.
  const std::string jsonl = (dir_ / "tiny.jsonl").string();
  r = ctxlab("export --experiment tiny --format jsonl -o " + jsonl + " --db " + db_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(jsonl);
  std::string line;
  int rows = 0, all_rows = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    ++rows;
    for (const char* k : {"context_tokens", "latency_ms_p50", "ttft_ms_p50", "tok_per_s_p50", "peak_mem_gb_p95", "meteor",
                          "rouge1", "rougeL", "quality"})
      EXPECT_TRUE(j.contains(k)) << k << " missing in " << line;
    if (j["dataset"] == "all") {
      ++all_rows;
      EXPECT_GT(j["peak_mem_gb_p95"].get<double>(), 0);
      EXPECT_EQ(j["context_length"], 96);
    }
    if (j["dataset"] == "needle") {
      EXPECT_TRUE(j["rougeL"].is_number()) << line;
    }
  }
  EXPECT_EQ(all_rows, 6);  // 4 runs + 2 reruns
  EXPECT_EQ(rows, 6 * 4);  // scopes: all, needle, hotpot, mmlu
  r = ctxlab("export " + std::to_string(ids[0]) + " --format csv --db " + db_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("run_id,experiment,status,dataset,attention,kv,kv_quant,quant,context_length,batch_size,context_tokens", 0), 0u)
      << r.out;

  // A Pareto plot of quality against KV memory: its data file lists exactly the front computed here
  // from the store (a run is on it when no other run has KV <= and quality >=, one strictly).
  const std::string plots = (dir_ / "plots").string();
  r = ctxlab("plot --experiment tiny --kind pareto --x kv_mb_p50 -o " + plots + " --db " + db_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::set<int64_t> expected;
  {
    store::RunStore s(db_);
    const auto runs = s.run_summaries();
    for (const auto& a : runs) {
      bool dominated = false;
      for (const auto& b : runs) {
        const double ax = *a.metric("kv_mb_p50"), ay = *a.metric("quality");
        const double bx = *b.metric("kv_mb_p50"), by = *b.metric("quality");
        dominated |= bx <= ax && by >= ay && (bx < ax || by > ay);
      }
      if (!dominated) expected.insert(a.run.id);
    }
    EXPECT_EQ(s.artifacts(*s.find_experiment("tiny")).size(), 4u);  // png, svg, data, script
  }
  ASSERT_FALSE(expected.empty());
  std::ifstream dat(plots + "/tiny_pareto.dat");
  ASSERT_TRUE(dat) << "no data file";
  std::stringstream text;
  text << dat.rdbuf();
  const std::string data = text.str();
  const size_t block1 = data.find("\n\n\n");
  ASSERT_NE(block1, std::string::npos) << data;
  std::set<int64_t> front;
  std::istringstream front_rows(data.substr(block1));
  while (std::getline(front_rows, line))
    if (!line.empty() && line[0] != '#') front.insert(std::stoll(line));
  EXPECT_EQ(front, expected) << data;
  for (const char* ext : {".png", ".svg", ".gp"}) EXPECT_TRUE(fs::exists(plots + "/tiny_pareto" + ext)) << ext;
}

// The seeds' "baseline hits OOM, optimized run succeeds": under a 300 MiB host memory cap the float32
// 110M model (440 MB of weights) ends with status oom, the sweep goes on, and int8 weights fit.
TEST_F(RunE2E, OomEndsTheTrialNotTheSweep) {
  const std::string config = std::string(CTXLAB_SOURCE_DIR) + "/experiments/configs/memory_limit.ini";
  auto r = ctxlab("run " + config + " --db " + db_ + " --set 'grid.quant=none;int8' --set threads=1 --set max_new_tokens=1" +
                  " --set tokenizer=" + test::shared_path("fixtures/tokenizers/llama2/tokenizer.model") +
                  " --set model=random:" + CTXLAB_SOURCE_DIR + "/bench/configs/llama_110m.json" +
                  " --set 'datasets.needle=needle:context_tokens=[64],depths=[50]'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  store::RunStore s(db_);
  const auto runs = s.run_summaries();
  ASSERT_EQ(runs.size(), 2u) << r.out;
  EXPECT_EQ(runs[0].run.params.at("quant"), "none");
  EXPECT_EQ(runs[0].run.status, "oom");
  EXPECT_NE(runs[0].run.message.find("exceeded memory_limit_mb=300"), std::string::npos) << runs[0].run.message;
  EXPECT_GT(*runs[0].metric("peak_mem_gb_max"), 300.0 / 1024);
  EXPECT_EQ(runs[1].run.params.at("quant"), "int8");
  EXPECT_EQ(runs[1].run.status, "ok") << runs[1].run.message;
  EXPECT_LT(*runs[1].metric("peak_mem_gb_max"), 300.0 / 1024);
}

// stop_at_oom: after the float32 trial at context 64 ends oom, its setting's trial at 128 is not run
// (nor stored) while the int8 setting runs both; max_batches = 1 runs one needle of the three.
TEST_F(RunE2E, StopAtOomSkipsLargerTrialsOfTheSettingAndMaxBatchesLimitsExamples) {
  const std::string config = std::string(CTXLAB_SOURCE_DIR) + "/experiments/configs/memory_limit.ini";
  auto r = ctxlab("run " + config + " --db " + db_ + " --set 'grid.quant=none;int8' --set threads=1 --set max_new_tokens=1" +
                  " --set tokenizer=" + test::shared_path("fixtures/tokenizers/llama2/tokenizer.model") +
                  " --set model=random:" + CTXLAB_SOURCE_DIR + "/bench/configs/llama_110m.json" +
                  " --set 'context_lengths=64,128' --set stop_at_oom=true --set max_batches=1" +
                  " --set 'datasets.needle=needle:depths=[25,50,75]'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("trial 1 (context 128, batch 1) not run: trial 0 of its setting (context 64, batch 1) ended oom"),
            std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 not run beyond an oom (stop_at_oom)"), std::string::npos) << r.out;
  store::RunStore s(db_);
  const auto runs = s.run_summaries();
  ASSERT_EQ(runs.size(), 3u) << r.out;
  EXPECT_EQ(runs[0].run.status, "oom");
  for (size_t i : {1, 2}) {
    EXPECT_EQ(runs[i].run.params.at("quant"), "int8");
    EXPECT_EQ(runs[i].run.status, "ok") << runs[i].run.message;
    EXPECT_EQ(s.examples(runs[i].run.id).size(), 1u);
  }
  EXPECT_EQ(runs[2].run.params.at("context_length"), "128");
}

// device = cuda: what the GPU engine cannot run ends as status unsupported with the reason, before
// any GPU is needed (so this holds on the CPU-only CI machine too), and the sweep goes on.
TEST_F(RunE2E, CudaTrialsTheGpuEngineLacksAreUnsupported) {
  auto r = ctxlab("run " + config_ + " --db " + db_ + " --set device=cuda --set grid.quant=none");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = ctxlab("run " + config_ + " --db " + db_ + " --set device=cuda --set dtype=bfloat16 --set grid.quant=none" +
             " --set 'grid.kv=none;l2norm:keep_ratio=0.5,skip_layers=[];snapkv:keep_ratio=0.5'" +
             " --set experiment.name=tiny_bf16");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  store::RunStore s(db_);
  const auto runs = s.run_summaries();
  ASSERT_EQ(runs.size(), 5u) << r.out;
  // float32 on cuda: the dtype; bf16 with kv none, l2norm or snapkv (attention scores on the GPU)
  // runs where there is a GPU and elsewhere says why it cannot.
  for (size_t i : {0, 1}) EXPECT_EQ(runs[i].run.status, "unsupported") << runs[i].run.message;
  EXPECT_NE(runs[0].run.message.find("dtype float32 on device cuda"), std::string::npos) << runs[0].run.message;
  EXPECT_NE(runs[1].run.message.find("dtype float32 on device cuda"), std::string::npos) << runs[1].run.message;
  for (size_t i : {2, 3, 4})
    if (runs[i].run.status != "ok") {
      EXPECT_EQ(runs[i].run.status, "unsupported");
      EXPECT_NE(runs[i].run.message.find("GPU engine"), std::string::npos) << runs[i].run.message;
    }
}

// device = cuda with weight quantizers: those whose packed bytes the GPU reads (llm_int8 with its
// input decomposition on the device too) run, or, without a GPU, say so.
TEST_F(RunE2E, CudaTrialsTakeTheQuantizersTheGpuRuns) {
  auto r = ctxlab("run " + config_ + " --db " + db_ + " --set device=cuda --set dtype=bfloat16 --set grid.kv=none" +
                  " --set 'grid.quant=llm_int8;q4_0'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  store::RunStore s(db_);
  const auto runs = s.run_summaries();
  ASSERT_EQ(runs.size(), 2u) << r.out;
  EXPECT_EQ(runs[0].run.params.at("quant"), "llm_int8");
  EXPECT_EQ(runs[1].run.params.at("quant"), "q4_0");
  for (size_t i : {0, 1})
    if (runs[i].run.status != "ok") {
      EXPECT_EQ(runs[i].run.status, "unsupported");
      EXPECT_NE(runs[i].run.message.find("GPU engine"), std::string::npos) << runs[i].run.message;  // no GPU here
    }
}

TEST_F(RunE2E, BadInputsGiveOneClearError) {
  auto r = ctxlab("run /nonexistent.ini --db " + db_);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("/nonexistent.ini: no such config file"), std::string::npos) << r.out;
  r = ctxlab("run " + config_ + " --db " + db_ + " --set 'datasets.hotpot=hotpotqa:path=/nonexistent/h.json,root=" + test::shared_path("datasets") + "'");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("[datasets] hotpot"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/h.json"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(db_)) << "a config error must not create a store";
  r = ctxlab("run " + config_ + " --db " + db_ + " --shard 4/4");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("need 0 <= I < N"), std::string::npos) << r.out;
  r = ctxlab("show 1 --db " + (dir_ / "missing.db").string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("no such run store"), std::string::npos) << r.out;
}

TEST_F(RunE2E, ShardsMergeIntoTheWholeSweep) {
  const std::string a = (dir_ / "a.db").string(), b = (dir_ / "b.db").string(), all = (dir_ / "all.db").string();
  auto r = ctxlab("run " + config_ + " --db " + a + " --shard 0/2 --set 'datasets.mmlu=mmlu:subjects=[anatomy],shots=0,limit=1,root=" +
                  test::shared_path("datasets") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = ctxlab("run " + config_ + " --db " + b + " --shard 1/2 --set 'datasets.mmlu=mmlu:subjects=[anatomy],shots=0,limit=1,root=" +
             test::shared_path("datasets") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = ctxlab("merge " + a + " " + b + " -o " + all);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  store::RunStore s(all);
  const auto runs = s.run_summaries();
  ASSERT_EQ(runs.size(), 4u);
  std::set<int64_t> trials;
  for (const auto& run : runs) trials.insert(run.run.trial_index);
  EXPECT_EQ(trials, (std::set<int64_t>{0, 1, 2, 3}));
  // The Slurm script runs the same shards and merges them.
  r = ctxlab("slurm " + config_ + " --shards 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("#SBATCH --array=0-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--shard \"${SLURM_ARRAY_TASK_ID}/2\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" merge "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ctx
