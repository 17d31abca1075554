// ctxlab slurm: writes an sbatch job-array script that runs a config's trials in N shards and
// merges the shard stores when the array has finished.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "core/base/error.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "experiments/runner/experiment_config.h"
#include "plugins/register_all.h"

namespace ctx::cli {

int cmd_slurm(const Args& args) {
  po::options_description desc("slurm options");
  desc.add_options()("config", po::value<std::string>()->required(), "experiment config")(
      "shards", po::value<int64_t>()->required(), "number of array tasks (each runs every N-th trial)")(
      "db", po::value<std::string>()->default_value("ctxlab.db"), "the merged store the last step writes")(
      "ctxlab", po::value<std::string>()->default_value("ctxlab"), "path of the ctxlab binary on the cluster")(
      "partition", po::value<std::string>()->default_value(""), "#SBATCH --partition")(
      "time", po::value<std::string>()->default_value("04:00:00"), "#SBATCH --time per shard")(
      "cpus", po::value<int64_t>()->default_value(8), "#SBATCH --cpus-per-task")(
      "gpus", po::value<int64_t>()->default_value(0), "#SBATCH --gpus-per-task (0 = none)")(
      "set", po::value<std::vector<std::string>>()->composing(), "config overrides passed to every shard")(
      "out,o", po::value<std::string>()->default_value("-"), "script file (- = stdout)");
  po::positional_options_description pos;
  pos.add("config", 1);
  po::variables_map vm;
  if (!parse_options("slurm", "CONFIG --shards N [-o job.sbatch] [options]", desc, args, vm, &pos)) return 0;
  const int64_t shards = vm["shards"].as<int64_t>();
  if (shards < 1) fail("--shards must be >= 1, got ", shards);
  const auto overrides = vm.count("set") ? vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};
  const auto config = runner::load_experiment_config(vm["config"].as<std::string>(), overrides, builtin_catalog());
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  std::string sets;
  for (const auto& o : overrides) sets += " --set " + quote(o);
  const std::string exe = quote(vm["ctxlab"].as<std::string>());
  const std::string cfg = quote(vm["config"].as<std::string>());
  const std::string db = vm["db"].as<std::string>();
  std::string s;
  s += "#!/bin/bash\n";
  s += "# ctxlab sweep '" + config.name + "': " + std::to_string(config.trials.size()) + " trials in " + std::to_string(shards) +
       " shards.\n";
  s += "# Submit with: sbatch THIS_FILE   (the merge step runs after every shard has finished)\n";
  s += "#SBATCH --job-name=ctxlab-" + config.name + "\n";
  s += "#SBATCH --array=0-" + std::to_string(shards - 1) + "\n";
  s += "#SBATCH --cpus-per-task=" + std::to_string(vm["cpus"].as<int64_t>()) + "\n";
  if (vm["gpus"].as<int64_t>() > 0) s += "#SBATCH --gpus-per-task=" + std::to_string(vm["gpus"].as<int64_t>()) + "\n";
  if (!vm["partition"].as<std::string>().empty()) s += "#SBATCH --partition=" + vm["partition"].as<std::string>() + "\n";
  s += "#SBATCH --time=" + vm["time"].as<std::string>() + "\n";
  s += "#SBATCH --output=ctxlab-" + config.name + "-%A_%a.log\n";
  s += "set -euo pipefail\n";
  s += "SHARD_DB=" + quote(db + ".shard") + "${SLURM_ARRAY_TASK_ID}\n";
  s += exe + " run " + cfg + sets + " --resume --db \"$SHARD_DB\" --shard \"${SLURM_ARRAY_TASK_ID}/" +
       std::to_string(shards) + "\"\n";
  s += "# The first task to finish submits the merge, which waits for the whole array (afterok).\n";
  s += "if [[ \"${SLURM_ARRAY_TASK_ID}\" == 0 ]]; then\n";
  s += "  sbatch --dependency=afterok:${SLURM_ARRAY_JOB_ID} --job-name=ctxlab-" + config.name + "-merge --wrap \"" + exe + " merge";
  for (int64_t i = 0; i < shards; ++i) s.append(" ").append(quote(db + ".shard" + std::to_string(i)));
  s += " -o " + quote(db) + "\"\n";
  s += "fi\n";
  const std::string out = vm["out"].as<std::string>();
  if (out == "-") {
    std::cout << s;
  } else {
    std::ofstream f(out);
    if (!(f << s)) fail(out, ": cannot write");
    std::fprintf(stderr, "wrote %s: %zu trials in %lld shards; submit with sbatch %s\n", out.c_str(), config.trials.size(),
                 (long long)shards, out.c_str());
  }
  return 0;
}

}  // namespace ctx::cli
