// Experiment configs: expansion of the grid, overrides, canonical trial configs, and one clear error
// for each kind of bad config.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "experiments/runner/experiment_config.h"
#include "experiments/runner/run_metrics.h"
#include "experiments/runner/trial_engine.h"
#include "plugins/register_all.h"
#include "tests/support/error_of.h"
#include "tests/support/test_paths.h"

namespace ctx::runner {
namespace {

class ConfigFile {
 public:
  ConfigFile(const std::string& ext, const std::string& text) {
    path_ = (std::filesystem::temp_directory_path() /
             ("ctxlab_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++) + ext))
                .string();
    std::ofstream(path_) << text;
  }
  ~ConfigFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

std::string model() { return test::shared_path("fixtures/stories260k/stories260K.bin"); }
std::string root() { return test::shared_path("datasets"); }

std::string ini(const std::string& grid, const std::string& extra_experiment = "") {
  return "[experiment]\nname = t\nmodel = " + model() + "\ncontext_lengths = 0, 128\nbatch_sizes = 1, 2\n" +
         extra_experiment + "\n[datasets]\nneedle = needle:depths=[50]\nhot = hotpotqa:limit=2,root=" + root() +
         "\n\n[grid]\n" + grid;
}

ExperimentConfig load(const std::string& text, const std::vector<std::string>& overrides = {},
                      const std::string& ext = ".ini") {
  ConfigFile f(ext, text);
  return load_experiment_config(f.path(), overrides, builtin_catalog());
}

std::string error_of_load(const std::string& text, const std::vector<std::string>& overrides = {},
                          const std::string& ext = ".ini") {
  return test::error_of([&] { load(text, overrides, ext); });
}

TEST(ExperimentConfig, ExpandsTheGridQuantOutermost) {
  const auto c = load(ini("attention = sdpa; flash\nkv = none; l2norm:keep_ratio=0.5\nquant = none; int8\n"));
  ASSERT_EQ(c.trials.size(), 2u * 2 * 2 * 2 * 2);  // quant x attention x kv x context x batch
  EXPECT_EQ(c.trials[0].quant.substr(0, 5), "none@");
  EXPECT_EQ(c.trials[16].quant.substr(0, 5), "int8@");
  EXPECT_EQ(c.trials[0].attention.substr(0, 5), "sdpa@");
  EXPECT_EQ(c.trials[8].attention.substr(0, 6), "flash@");
  EXPECT_EQ(c.trials[4].kv.substr(0, 7), "l2norm@");
  EXPECT_EQ(c.trials[1].batch_size, 2);
  EXPECT_EQ(c.trials[2].context_length, 128);
  for (size_t i = 0; i < c.trials.size(); ++i) EXPECT_EQ(c.trials[i].index, int64_t(i));
  // Canonical specs carry every parameter; kv_quant defaults to none.
  EXPECT_NE(c.trials[4].kv.find("keep_ratio=0.5"), std::string::npos);
  EXPECT_EQ(c.trials[0].kv_quant.substr(0, 5), "none@");
}

TEST(ExperimentConfig, ContextLengthBecomesMaxTokensOrHaystackLength) {
  const auto c = load(ini("kv = none\n"));
  const auto& at0 = c.trials[0];
  const auto& at128 = c.trials[2];
  ASSERT_EQ(at128.context_length, 128);
  EXPECT_NE(at0.datasets[0].second.find("context_tokens=[1000]"), std::string::npos) << at0.datasets[0].second;
  EXPECT_NE(at128.datasets[0].second.find("context_tokens=[128]"), std::string::npos) << at128.datasets[0].second;
  EXPECT_NE(at0.datasets[1].second.find("max_tokens=0"), std::string::npos);
  EXPECT_NE(at128.datasets[1].second.find("max_tokens=128"), std::string::npos);
}

TEST(ExperimentConfig, PluginSectionsAndOverrides) {
  const auto c = load(ini("kv = none; l2norm\n") + "\n[kv.l2norm]\nkeep_ratio = 0.25\n",
                      {"threads=1", "experiment.seed=7", "batch_sizes=4", "kv.l2norm.prune_after=64"});
  ASSERT_EQ(c.trials.size(), 2u * 2 * 1);
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.seed, 7);
  EXPECT_EQ(c.trials[0].batch_size, 4);
  EXPECT_NE(c.trials[2].kv.find("keep_ratio=0.25"), std::string::npos) << c.trials[2].kv;
  EXPECT_NE(c.trials[2].kv.find("prune_after=64"), std::string::npos) << c.trials[2].kv;
  const auto d = load(ini("kv = none\n"), {"grid.kv=none;streaming", "datasets.hot=hotpotqa:limit=1,root=" + root()});
  EXPECT_EQ(d.kv.size(), 2u);
  EXPECT_NE(d.datasets[1].second.find("limit=1"), std::string::npos);
}

TEST(ExperimentConfig, JsonConfigsEqualIniConfigs) {
  const std::string json = R"({"experiment": {"name": "t", "model": ")" + model() +
                           R"(", "context_lengths": [0, 128], "batch_sizes": [1, 2]},
    "datasets": {"needle": "needle:depths=[50]", "hot": {"name": "hotpotqa", "limit": 2, "root": ")" + root() + R"("}},
    "grid": {"kv": ["none", {"name": "l2norm", "keep_ratio": 0.5}]}})";
  const auto a = load(json, {}, ".json");
  const auto b = load(ini("kv = none; l2norm:keep_ratio=0.5\n"));
  ASSERT_EQ(a.trials.size(), b.trials.size());
  for (size_t i = 0; i < a.trials.size(); ++i) EXPECT_EQ(a.trials[i].canonical(), b.trials[i].canonical());
}

TEST(ExperimentConfig, TrialConfigRoundTripsThroughJson) {
  const auto c = load(ini("kv = none; l2norm:keep_ratio=0.5\n"));
  for (const auto& t : c.trials) {
    const auto back = TrialConfig::from_json(nlohmann::json::parse(t.canonical()), "test");
    EXPECT_EQ(back.canonical(), t.canonical());
  }
  EXPECT_NE(test::error_of([] { TrialConfig::from_json(nlohmann::json::parse(R"({"model": 3})"), "db: run 4"); })
                .find("db: run 4"),
            std::string::npos);
}

TEST(ExperimentConfig, BadConfigsGiveOneClearError) {
  struct Case {
    std::string text, expected;
    std::vector<std::string> overrides = {};
  };
  const std::string ok_grid = "kv = none\n";
  const std::vector<Case> cases = {
      {ini(ok_grid, "modle = x\n"), "[experiment] unknown key 'modle'"},
      {ini(ok_grid, "threads = many\n"), "[experiment] threads: expected an integer, got 'many'"},
      {ini(ok_grid, "repetitions = 0\n"), "[experiment] repetitions: must be >= 1"},
      {ini(ok_grid, "device = tpu\n"), "device 'tpu': expected cpu or cuda"},
      {ini("kv = \n"), "[grid] kv: empty grid list"},
      {ini("kv = none; nonesuch\n"), "unknown kv plugin 'nonesuch'"},
      {ini("kv = l2norm:keep_ratio=2\n"), "keep_ratio"},
      {ini("kv = none; none\n"), "listed twice"},
      {ini("attn = sdpa\n"), "[grid] unknown key 'attn'"},
      {ini(ok_grid) + "\n[extra]\na = 1\n", "unknown section [extra]"},
      {ini(ok_grid) + "\n[kv.h2o]\nkeep_ratio = 0.5\n", "section [kv.h2o] configures kv plugin 'h2o'"},
      {"[experiment]\nname = t\n", "[experiment] missing key 'model'"},
      {"[experiment]\nname = t\nmodel = /nonexistent/model.bin\n[datasets]\nx = needle\n", "model '/nonexistent/model.bin': no such file"},
      {"[experiment]\nname = t\nmodel = " + model() + "\n", "missing section [datasets]"},
      {"[experiment]\nname = t\nmodel = " + model() + "\n[datasets]\nx = nosuchset\n", "unknown dataset plugin 'nosuchset'"},
      {"[experiment\nname = t\n", ":1: "},
      {ini(ok_grid), "--set bogus: unknown key", {"bogus=1"}},
      {ini(ok_grid), "expected KEY=VALUE", {"threads"}},
  };
  for (const auto& c : cases) {
    const std::string e = error_of_load(c.text, c.overrides);
    EXPECT_NE(e.find(c.expected), std::string::npos) << "expected '" << c.expected << "' in: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_NE(test::error_of([] { load_experiment_config("/nonexistent/x.ini", {}, builtin_catalog()); }).find("no such config file"),
            std::string::npos);
  ConfigFile yaml(".yaml", "a: 1");
  EXPECT_NE(test::error_of([&] { load_experiment_config(yaml.path(), {}, builtin_catalog()); }).find("unknown config format"),
            std::string::npos);
}

// [setting.NAME] sections: named combinations instead of the product, in file order, each crossed
// with the context lengths and batch sizes; parameter sections apply to them; max_batches,
// prefill_chunk and stop_at_oom are read, and absent from the JSON when unset (older stored hashes
// stay valid).
TEST(ExperimentConfig, SettingsSectionsAreNamedCombinations) {
  const std::string head = "[experiment]\nname = t\nmodel = " + model() +
                           "\ncontext_lengths = 64, 128\nbatch_sizes = 1, 2\n";
  const std::string settings =
      "\n[setting.base]\nattention = sdpa\n\n[setting.small]\nattention = paged:block_size=16\nkv = l2norm\nquant = int8\n"
      "\n[kv.l2norm]\nkeep_ratio = 0.25\n";
  const auto c = load(head + "max_batches = 1\nstop_at_oom = true\nprefill_chunk = 512\n\n[datasets]\nneedle = needle:depths=[50]\n" +
                      settings);
  ASSERT_EQ(c.settings.size(), 2u);
  EXPECT_EQ(c.settings[0].name, "base");
  ASSERT_EQ(c.trials.size(), 2u * 2 * 2);  // setting x context x batch
  EXPECT_EQ(c.trials[0].attention.substr(0, 5), "sdpa@");
  EXPECT_EQ(c.trials[0].kv.substr(0, 5), "none@");
  EXPECT_EQ(c.trials[4].attention.substr(0, 6), "paged@");
  EXPECT_NE(c.trials[4].kv.find("keep_ratio=0.25"), std::string::npos) << c.trials[4].kv;
  EXPECT_EQ(c.trials[4].quant.substr(0, 5), "int8@");
  EXPECT_EQ(c.trials[5].batch_size, 2);
  EXPECT_EQ(c.trials[6].context_length, 128);
  EXPECT_TRUE(c.trials[4].same_setting(c.trials[7]));
  EXPECT_FALSE(c.trials[0].same_setting(c.trials[4]));
  EXPECT_TRUE(c.stop_at_oom);
  EXPECT_EQ(c.trials[0].max_batches, 1);
  EXPECT_EQ(c.trials[5].prefill_chunk, 512);
  EXPECT_EQ(c.trials[5].to_json()["prefill_chunk"], 512);
  EXPECT_EQ(c.to_json()["prefill_chunk"], 512);
  EXPECT_EQ(TrialConfig::from_json(c.trials[3].to_json(), "test").canonical(), c.trials[3].canonical());
  EXPECT_EQ(TrialConfig::from_json(c.trials[3].to_json(), "test").prefill_chunk, 512);
  nlohmann::json negative = c.trials[3].to_json();
  negative["prefill_chunk"] = -4;
  try {
    TrialConfig::from_json(negative, "stored run 3");
    ADD_FAILURE() << "a negative stored prefill_chunk was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stored run 3: trial config 'prefill_chunk' must be >= 0"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(c.to_json()["settings"]["small"]["quant"], c.trials[4].quant);
  // Unset: neither key in the canonical JSON, so a trial hashes as before these options existed.
  const auto plain = load(ini("kv = none\n"));
  EXPECT_FALSE(plain.trials[0].to_json().contains("max_batches"));
  EXPECT_FALSE(plain.trials[0].to_json().contains("prefill_chunk"));
  EXPECT_EQ(plain.trials[0].prefill_chunk, 0);
  EXPECT_FALSE(plain.to_json().contains("stop_at_oom"));
  EXPECT_FALSE(plain.stop_at_oom);
  const std::string ds = "\n[datasets]\nneedle = needle:depths=[50]\n";
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {head + ds + settings + "\n[grid]\nkv = none\n", "[grid] and [setting.base] exclude each other"},
           {head + ds + "\n[setting.a]\nattn = sdpa\n", "[setting.a] unknown key 'attn'"},
           {head + ds + "\n[setting.a]\nkv = nonesuch\n", "unknown kv plugin 'nonesuch'"},
           {head + ds + "\n[setting.a]\nattention = sdpa\n\n[setting.b]\nkv = none\n", "[setting.b]: the same plugins as [setting.a]"},
           {head + ds + "\n[setting.a]\nattention = sdpa\n\n[kv.l2norm]\nkeep_ratio = 0.5\n", "which no [setting.*] uses"},
           {head + "stop_at_oom = yes\n" + ds + settings, "stop_at_oom 'yes': expected true or false"},
           {head + "max_batches = -1\n" + ds + settings, "max_batches: must be >= 0"},
           {head + "prefill_chunk = -1\n" + ds + settings, "prefill_chunk: must be >= 0"},
           {head + "prefill_chunk = many\n" + ds + settings, "prefill_chunk"}}) {
    const std::string e = error_of_load(text);
    EXPECT_NE(e.find(expected), std::string::npos) << "expected '" << expected << "' in: " << e;
  }
}

// The GPU memory-scaling demo's config validates on a machine without CUDA: settings in order, the
// device budget, one batch per trial, the contexts doubling from 8k and the batches up to 8.
TEST(ExperimentConfig, GpuMemoryScalingConfigValidates) {
  const std::string path = std::string(CTXLAB_SOURCE_DIR) + "/experiments/configs/gpu_memory_scaling.ini";
  const auto c = load_experiment_config(
      path, {"tokenizer=" + test::shared_path("fixtures/tokenizers/llama2/tokenizer.model")}, builtin_catalog());
  EXPECT_EQ(c.device, "cuda");
  EXPECT_EQ(c.dtype, "bfloat16");
  EXPECT_GT(c.memory_limit_mb, 0);
  EXPECT_TRUE(c.stop_at_oom);
  EXPECT_EQ(c.max_batches, 1);
  EXPECT_EQ(c.context_lengths, (std::vector<int64_t>{8192, 16384, 32768, 65536}));
  EXPECT_EQ(c.batch_sizes, (std::vector<int64_t>{1, 2, 4, 8}));
  std::vector<std::string> names;
  for (const auto& s : c.settings) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"baseline", "paged", "paged_l2norm", "paged_l2norm_int8w", "kivi8_int8w",
                                             "l2norm_kivi8_int8w", "paged_l2norm_kivi8_int8w", "paged_int8w"}));
  EXPECT_EQ(c.trials.size(), 8u * 4 * 4);
  EXPECT_NE(c.settings[2].kv.find("skip_layers=[]"), std::string::npos) << c.settings[2].kv;
  EXPECT_NE(c.settings[4].kv_quant.find("bits=8"), std::string::npos) << c.settings[4].kv_quant;
  // All of them: l2norm and KIVI int8 composed (contiguous: the GPU's KIVI layout) with int8 weights.
  EXPECT_EQ(c.settings[5].kv.rfind("l2norm@", 0), 0u) << c.settings[5].kv;
  EXPECT_NE(c.settings[5].kv.find("keep_ratio=0.5"), std::string::npos) << c.settings[5].kv;
  EXPECT_NE(c.settings[5].kv_quant.find("bits=8"), std::string::npos) << c.settings[5].kv_quant;
  EXPECT_NE(c.settings[5].quant.find("int8"), std::string::npos) << c.settings[5].quant;
  EXPECT_EQ(c.settings[5].attention.rfind("sdpa", 0), 0u) << c.settings[5].attention;
  // The issue's row: the same on paged KV.
  EXPECT_EQ(c.settings[6].attention.rfind("paged", 0), 0u) << c.settings[6].attention;
  EXPECT_EQ(c.settings[6].kv, c.settings[5].kv);
  EXPECT_EQ(c.settings[6].kv_quant, c.settings[5].kv_quant);
  EXPECT_EQ(c.settings[6].quant, c.settings[5].quant);
  EXPECT_NE(c.trials[0].datasets[0].second.find("context_tokens=[8192]"), std::string::npos) << c.trials[0].datasets[0].second;
}

// The quality side of the GPU memory study: one trial per memory saving, on the GPU, real model.
TEST(ExperimentConfig, GpuParetoSweepConfigValidates) {
  const std::string path = std::string(CTXLAB_SOURCE_DIR) + "/experiments/configs/gpu_pareto_sweep.ini";
  const auto c = load_experiment_config(
      path, {"model=" + test::shared_path("fixtures/stories260k/stories260K.bin")}, builtin_catalog());
  EXPECT_EQ(c.device, "cuda");
  EXPECT_EQ(c.dtype, "bfloat16");
  ASSERT_EQ(c.settings.size(), 16u);
  EXPECT_EQ(c.trials.size(), 16u);
  EXPECT_EQ(c.settings[0].name, "baseline");
  EXPECT_EQ(c.settings[12].name, "paged_l2norm_int8w");
  EXPECT_NE(c.settings[12].kv.find("keep_ratio=0.5"), std::string::npos) << c.settings[12].kv;
  EXPECT_NE(c.settings[12].quant.find("int8"), std::string::npos) << c.settings[12].quant;
  // The two settings composing KV compression with KIVI (both engines run them), last: contiguous, then paged.
  for (size_t i = 0; i < c.settings.size(); ++i) {
    const auto& s = c.settings[i];
    EXPECT_EQ(s.kv.rfind("none", 0) != 0 && s.kv_quant.rfind("none", 0) != 0, i >= 14) << s.name;
  }
  EXPECT_EQ(c.settings[14].name, "l2norm_kivi8_int8w");
  EXPECT_EQ(c.settings[15].name, "paged_l2norm_kivi8_int8w");
  EXPECT_EQ(c.settings[15].attention.rfind("paged", 0), 0u) << c.settings[15].attention;
}

TEST(RunMetrics, PercentilesAndAggregates) {
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 95), 3.85);  // numpy.percentile([1,2,3,4], 95)
  EXPECT_DOUBLE_EQ(percentile({7}, 95), 7);
  std::vector<store::ExampleRecord> ex(3);
  ex[0].dataset = "a", ex[1].dataset = "a", ex[2].dataset = "b";
  ex[0].scores = {{"quality", 100}, {"em", 1}};
  ex[1].scores = {{"quality", 0}, {"em", 0}};
  ex[2].scores = {{"quality", 40}};
  for (size_t i = 0; i < 3; ++i) ex[i].latency_ms = double(10 * (i + 1)), ex[i].decode_ms_per_token = 2, ex[i].prompt_tokens = 100;
  const auto m = run_metrics(ex, 4, 1 << 20);
  auto get = [&](const std::string& scope, const std::string& name) {
    for (const auto& r : m)
      if (r.scope == scope && r.name == name) return r.value;
    return -1.0;
  };
  EXPECT_DOUBLE_EQ(get("a", "quality"), 50);
  EXPECT_DOUBLE_EQ(get("a", "em"), 0.5);
  EXPECT_DOUBLE_EQ(get("b", "quality"), 40);
  EXPECT_DOUBLE_EQ(get("", "quality"), 45);  // mean over datasets, not examples
  EXPECT_DOUBLE_EQ(get("", "latency_ms_p50"), 20);
  EXPECT_DOUBLE_EQ(get("", "tok_per_s_p50"), 500);
  EXPECT_DOUBLE_EQ(get("", "throughput_tok_s_p50"), 2000);
  EXPECT_DOUBLE_EQ(get("", "examples"), 3);
  EXPECT_DOUBLE_EQ(get("", "weight_bytes"), 1 << 20);
  EXPECT_TRUE(is_measurement_metric("latency_ms_p95"));
  EXPECT_FALSE(is_measurement_metric("quality"));
}

// The GPU engine's options for each attention spec, decided on the host (no GPU needed).
TEST(GpuAttention, SpecsMapOntoTheEngineOptions) {
  const Catalog& catalog = builtin_catalog();
  cuda::GpuEngineOptions sdpa, eager, flex, paged;
  set_gpu_attention(catalog, "sdpa", sdpa);
  EXPECT_FALSE(sdpa.eager_attention);
  EXPECT_TRUE(sdpa.flex_mask.empty() && sdpa.score_mod.empty() && sdpa.kv_block_size == 0);
  set_gpu_attention(catalog, "eager", eager);
  EXPECT_TRUE(eager.eager_attention);
  const std::string why = test::error_of([&] { set_gpu_attention(catalog, "eager:precision=double", eager); });
  EXPECT_NE(why.find("float32"), std::string::npos) << why;
  set_gpu_attention(catalog, "flex:mask=sliding_window,window=8,score=alibi+softcap,softcap=30", flex);
  EXPECT_EQ(flex.flex_mask.count, 1);
  ASSERT_EQ(flex.score_mod.count, 2);
  EXPECT_EQ(flex.score_mod.ops[0], cuda::ScoreMod::kAlibi);
  EXPECT_EQ(flex.score_mod.ops[1], cuda::ScoreMod::kSoftcap);
  EXPECT_EQ(flex.score_mod.softcap, 30.f);
  set_gpu_attention(catalog, "paged:block_size=32", paged);
  EXPECT_EQ(paged.kv_block_size, 32);
}

}  // namespace
}  // namespace ctx::runner
