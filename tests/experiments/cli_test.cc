// The ctxlab binary end to end: outputs that can be checked against references, and the one-line
// errors and exit codes for bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/io/safetensors.h"
#include "plugins/register_all.h"
#include "tests/support/cli_run.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

using test::CliRun;

// The binary built beside this test, or $CTXLAB_BIN (a relocated bundle, e.g. scripts/device_bundle.sh).
std::string ctxlab_binary() {
  const char* env = std::getenv("CTXLAB_BIN");
  return env && *env ? env : CTXLAB_BIN;
}

CliRun ctxlab(const std::string& args) { return test::run_command(ctxlab_binary() + " " + args); }

std::string fixture(const std::string& rel) { return test::shared_path("fixtures/" + rel); }

std::string join(const std::vector<int32_t>& ids, size_t from, size_t to) {
  std::string s;
  for (size_t i = from; i < to; ++i) {
    if (i > from) s += ',';
    s += std::to_string(ids[i]);
  }
  return s;
}

TEST(Cli, GeneratePrintIdsReproducesTheReference) {
  auto ref = SafetensorsFile::open(fixture("hf/qwen3/reference.safetensors"));
  std::vector<int64_t> s_ids, s_gen;
  const auto ids = test::ids_tensor(ref.index(), "input_ids", &s_ids);
  const auto gen = test::ids_tensor(ref.index(), "generated", &s_gen);
  const size_t T = size_t(s_ids[1]), G = size_t(s_gen[1]);
  const CliRun r = ctxlab("generate --threads 1 --model " + fixture("hf/qwen3") + " --prompt-ids " + join(ids, 0, T) +
                       " --max-new-tokens 16 --print-ids");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), join(gen, T, G)) << r.out;
  EXPECT_NE(r.out.find("TTFT"), std::string::npos);
}

TEST(Cli, GenerateTextWithTheLlama2cTokenizer) {
  const CliRun r = ctxlab("generate --threads 1 --model " + fixture("stories260k/stories260K.bin") + " --max-new-tokens 20 --prompt ''");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  // run.c's greedy output from BOS begins with this sentence (fixtures/stories260k/README.md).
  EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily.", 0), 0u) << r.out;
}

TEST(Cli, LogitsFileMatchesTheReference) {
  auto ref = SafetensorsFile::open(fixture("hf/llama/reference.safetensors"));
  std::vector<int64_t> s_ids, s_logits;
  const auto ids = test::ids_tensor(ref.index(), "input_ids", &s_ids);
  const auto logits = test::f32_tensor(ref.index(), "logits", &s_logits);
  const size_t T = size_t(s_ids[1]);
  const std::string out = test::temp_dir() + "/cli_logits.safetensors";
  const CliRun r = ctxlab("logits --threads 1 --model " + fixture("hf/llama") + " --prompt-ids " + join(ids, 0, T) + " --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto ours = SafetensorsFile::open(out);
  std::vector<int64_t> shape;
  const auto got = test::f32_tensor(ours.index(), "logits", &shape);
  ASSERT_EQ(shape, (std::vector<int64_t>{1, int64_t(T), 512}));
  EXPECT_LE(test::compare(got.data(), logits.data(), int64_t(got.size())).relative(), 1e-4);
  EXPECT_EQ(test::ids_tensor(ours.index(), "input_ids", nullptr), std::vector<int32_t>(ids.begin(), ids.begin() + long(T)));
}

TEST(Cli, FidelityOfAnotherBackendIsExactUpToRounding) {
  // The story's first sentence scored by stories260K: paged attention against eager.
  const std::string text = test::temp_dir() + "/fidelity.txt";
  std::ofstream(text) << "Once upon a time, there was a little girl named Lily. She loved to play outside.";
  const CliRun r = ctxlab("fidelity --threads 1 --model " + fixture("stories260k/stories260K.bin") + " --text " + text +
                          " --attention paged --reference-attention eager --greedy 8");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* part : {"top-1 agreement: 1.0000", "ratio 1.000000", "greedy: 8 of 8 tokens identical", "KL divergence (nats): mean "})
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
  const size_t ppl = r.out.find("perplexity: reference ");
  ASSERT_NE(ppl, std::string::npos) << r.out;
  const double ref_ppl = std::stod(r.out.substr(ppl + 22));
  EXPECT_GT(ref_ppl, 1.0);
  EXPECT_LT(ref_ppl, 20.0) << "the model knows its own training story";  // a real model, not random ids

  const CliRun both = ctxlab("fidelity --model " + fixture("stories260k/stories260K.bin") + " --text " + text + " --ids 1,2");
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.out.find("give exactly one of --text FILE or --ids IDS"), std::string::npos) << both.out;
}

TEST(Cli, DoctorReportsBuildAndCpu) {
  const CliRun r = ctxlab("doctor");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* part : {"build:", "cuda:", "cpu:", "features:", "threads:", "gpu"})
    EXPECT_NE(r.out.find(part), std::string::npos) << part << "\n" << r.out;
}

TEST(Cli, PluginsListsEachAttentionBackendWithItsParameters) {
  const CliRun r = ctxlab("plugins attention");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const RegistryBase& reg = builtin_catalog().attention;
  const auto names = reg.names();
  for (const char* required : {"eager", "sdpa"})
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
  for (const auto& name : names) {
    const PluginInfo& info = reg.get(name);
    const size_t at = r.out.find("\n" + name + "@" + std::to_string(info.version) + "  " + info.help + "\n");
    ASSERT_NE(at, std::string::npos) << name << "\n" << r.out;
    for (const auto& p : info.schema) {
      const size_t line = r.out.find("    " + p.name + " ", at);
      ASSERT_NE(line, std::string::npos) << name << "." << p.name << "\n" << r.out;
      const std::string text = r.out.substr(line, r.out.find('\n', line) - line);
      for (const std::string& part : {format_param_value(p.default_value), p.allowed(), p.help})
        EXPECT_NE(text.find(part), std::string::npos) << part << " not in: " << text;
    }
  }
  // No kind given: every kind is listed.
  const CliRun all = ctxlab("plugins");
  ASSERT_EQ(all.exit_code, 0) << all.out;
  for (const char* kind : {"attention plugins", "kv plugins", "kv_quant plugins", "quant plugins", "dataset plugins", "metric plugins"})
    EXPECT_NE(all.out.find(kind), std::string::npos) << kind << "\n" << all.out;
}

TEST(Cli, DataShowPrintsExactPromptsAndCounts) {
  const std::string root = test::shared_path("datasets");
  const CliRun r = ctxlab("data show --dataset 'mmlu:subjects=[anatomy],shots=1,root=" + root + "' --limit 1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("--- prompt ---\nThe following are multiple choice questions (with answers) about anatomy.\n\n"
                       "What is the embryological origin of the hyoid bone?\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("continuations: ' A' ' B' ' C' ' D'   gold: 0"), std::string::npos) << r.out;
  const CliRun json = ctxlab("data show --json --limit 2 --dataset 'hotpotqa:setting=closed_book,root=" + root + "'");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  EXPECT_EQ(std::count(json.out.begin(), json.out.end(), '\n'), 2) << json.out;
  EXPECT_NE(json.out.find("\"references\":[\"yes\"]"), std::string::npos) << json.out;
  const CliRun count = ctxlab("data count --dataset 'longbench:task=multi_news,root=" + root + "'");
  ASSERT_EQ(count.exit_code, 0) << count.out;
  EXPECT_NE(count.out.find("samples: 200\nskipped: 0"), std::string::npos) << count.out;
  const CliRun trunc = ctxlab("data show --limit 1 --max-tokens 300 --tokenizer " +
                              test::shared_path("fixtures/tokenizers/llama2/tokenizer.model") +
                              " --dataset 'longbench:task=multi_news,root=" + root + "'");
  ASSERT_EQ(trunc.exit_code, 0) << trunc.out;
  EXPECT_NE(trunc.out.find("-> 300 (cut "), std::string::npos) << trunc.out;
  const CliRun list = ctxlab("data list");
  for (const char* name : {"mmlu@1", "hotpotqa@1", "narrativeqa@1", "longbench@1", "longbench_v2@1", "needle@1"})
    EXPECT_NE(list.out.find(name), std::string::npos) << name;
}

TEST(Cli, EveryCommandHasHelp) {
  for (const char* cmd : {"generate", "logits", "doctor", "bench decode", "bench prefill", "bench attention", "plugins", "data"}) {
    const CliRun r = ctxlab(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.out;
    EXPECT_NE(r.out.find("usage: ctxlab"), std::string::npos) << cmd << ": " << r.out;
  }
}

// Bad input: one line naming the problem, a non-zero exit, never a crash.
TEST(Cli, BadInputGivesOneLineErrors) {
  struct Case {
    std::string args;
    int exit_code;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"frobnicate", 2, "unknown command 'frobnicate'"},
      {"generate --prompt hi", 2, "'--model' is required"},
      {"generate --model /nonexistent --prompt-ids 1", 1, "/nonexistent: no such checkpoint"},
      {"generate --model " + fixture("hf/llama") + " --prompt-ids 1,x,3", 1, "'x' is not a non-negative integer"},
      {"generate --model " + fixture("hf/llama") + " --prompt-ids 1,600", 1, "token id 600 is outside the vocabulary"},
      {"generate --model " + fixture("hf/llama") + " --prompt hello", 1, "no tokenizer found"},
      {"logits --model " + fixture("hf/llama") + " --prompt-ids 1 --out /nonexistent/dir/x.safetensors", 1,
       "cannot open for writing"},
      {"bench frobnicate", 1, "unknown benchmark 'frobnicate'"},
      {"score --metric rouge", 1, "give --metric NAME and --input CASES.jsonl"},
      {"data show", 1, "ctxlab data show needs --dataset SPEC"},
      {"data show --dataset 'mmlu:shots=9'", 1, "invalid value '9' for parameter 'shots'"},
      {"plugins nosuchkind", 1, "unknown plugin kind 'nosuchkind' (kinds: attention, kv, kv_quant, quant, dataset, metric)"},
      {"generate --model " + fixture("hf/llama") + " --prompt-ids 1 --max-new-tokens -3", 1, "--max-new-tokens must be >= 0"},
  };
  // An unknown command prints its one-line error and then the usage (one line per command).
  const std::string usage = ctxlab("--help").out;
  const long usage_lines = std::count(usage.begin(), usage.end(), '\n');
  for (const auto& c : cases) {
    const CliRun r = ctxlab(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.args << "\n" << r.out;
    EXPECT_LE(std::count(r.out.begin(), r.out.end(), '\n'), c.args == "frobnicate" ? usage_lines + 1 : 1)
        << c.args << "\n" << r.out;
  }
}

TEST(Cli, ScoreWritesOneLinePerCaseWithTheGoldenKeys) {
  const std::string dir = test::temp_dir();
  {
    std::ofstream f(dir + "/cases.jsonl");
    f << R"({"id": "q1", "prediction": "The Eiffel Tower", "references": ["Eiffel tower", "tower"]})" << "\n\n"
      << R"({"id": "q2", "prediction": "no", "references": ["yes"], "options": {"x": 1}})" << "\n";
  }
  const CliRun r = ctxlab("score --metric squad_em_f1 --input " + dir + "/cases.jsonl --output " + dir + "/out.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream in(dir + "/out.jsonl");
  std::string l1, l2, l3;
  std::getline(in, l1);
  std::getline(in, l2);
  EXPECT_FALSE(std::getline(in, l3));
  EXPECT_EQ(l1, R"({"id":"q1","scores":{"exact_match":1.0,"f1":1.0,"exact_match@ref0":1.0,"f1@ref0":1.0,)"
                R"("exact_match@ref1":0.0,"f1@ref1":0.6666666666666666}})");
  EXPECT_EQ(l2, R"({"id":"q2","scores":{"exact_match":0.0,"f1":0.0}})");
}

TEST(Cli, ScoreReportsTheBadLineAndUnknownMetric) {
  const std::string dir = test::temp_dir();
  {
    std::ofstream f(dir + "/bad.jsonl");
    f << R"({"id": "q1", "prediction": "a", "references": ["a"]})" << "\n" << R"({"id": "q2", "prediction": "a"})" << "\n";
  }
  const CliRun bad = ctxlab("score --metric rouge --input " + dir + "/bad.jsonl");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("bad.jsonl:2: missing \"references\""), std::string::npos) << bad.out;
  const CliRun unknown = ctxlab("score --metric bleurt --input " + dir + "/bad.jsonl");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.out.find("unknown metric plugin 'bleurt'"), std::string::npos) << unknown.out;
}

}  // namespace
}  // namespace ctx
