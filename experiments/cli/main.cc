// ctxlab: measure what attention backends, KV-cache compression and weight quantization cost and buy.
#include <boost/program_options/errors.hpp>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>

#include "core/base/error.h"
#include "experiments/cli/commands.h"

namespace {

struct Command {
  const char* name;
  const char* help;
  std::function<int(const ctx::cli::Args&)> run;
};

const Command kCommands[] = {
    {"run", "run an experiment config (grid of attention x kv x quant trials) into the SQLite run store", ctx::cli::cmd_run},
    {"ls", "experiments and runs in a run store (filter by experiment, status, params)", ctx::cli::cmd_ls},
    {"show", "one run: config, environment, metrics (and examples)", ctx::cli::cmd_show},
    {"compare", "runs side by side: every metric with deltas against the first", ctx::cli::cmd_compare},
    {"rerun", "re-execute a stored run and report whether every answer and score is identical", ctx::cli::cmd_rerun},
    {"export", "runs as JSON Lines or CSV rows (the seeds' fields: context_tokens, latency_ms_p50, ...)", ctx::cli::cmd_export},
    {"plot", "Pareto, context-length, batch and comparison figures (PNG + SVG) from the run store", ctx::cli::cmd_plot},
    {"merge", "merge shard run stores into one", ctx::cli::cmd_merge},
    {"slurm", "write an sbatch job-array script that runs a config in shards and merges them", ctx::cli::cmd_slurm},
    {"generate", "greedy generation from a prompt (text or token ids), with timings", ctx::cli::cmd_generate},
    {"logits", "teacher-forced logits of a token sequence, written as float32 safetensors", ctx::cli::cmd_logits},
    {"doctor", "build flags, threads, CPU features and GPUs", ctx::cli::cmd_doctor},
    {"bench", "benchmarks: decode (memory-bandwidth roofline), prefill (GFLOP/s), attention (backends)", ctx::cli::cmd_bench},
    {"fidelity", "how far KV compression / quantization / another backend moves a model: KL, top-1, PPL ratio",
     ctx::cli::cmd_fidelity},
    {"score", "text metrics (ROUGE, METEOR, EM/F1, LongBench) of a JSON Lines case file; --bench times them",
     ctx::cli::cmd_score},
    {"data", "dataset plugins: list them, show exact prompts of a spec, count samples", ctx::cli::cmd_data},
    {"plugins", "registered plugins (attention, kv, ...) with versions, parameters and defaults", ctx::cli::cmd_plugins},
};

void print_usage() {
  std::cout << "usage: ctxlab COMMAND [options]   (ctxlab COMMAND --help for its options)\n\ncommands:\n";
  for (const auto& c : kCommands) std::printf("  %-10s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string name = argv[1];
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(ctx::cli::Args(argv + 2, argv + argc));
    } catch (const ctx::Unsupported& e) {
      std::cerr << "ctxlab " << name << ": unsupported: " << e.what() << "\n";
      return 3;
    } catch (const ctx::Error& e) {
      std::cerr << "ctxlab " << name << ": error: " << e.what() << "\n";
      return 1;
    } catch (const boost::program_options::error& e) {
      std::cerr << "ctxlab " << name << ": " << e.what() << " (see ctxlab " << name << " --help)\n";
      return 2;
    } catch (const std::bad_alloc&) {
      std::cerr << "ctxlab " << name << ": error: out of memory\n";
      return 1;
    }
  }
  std::cerr << "ctxlab: unknown command '" << name << "'\n";
  print_usage();
  return 2;
}
