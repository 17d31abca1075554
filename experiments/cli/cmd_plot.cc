// ctxlab plot: renders figures from the run store (plots/plot.h) and records them as artifacts.
#include <cstdio>
#include <fstream>

#include "core/base/error.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "plots/plot.h"

namespace ctx::cli {

int cmd_plot(const Args& args) {
  po::options_description desc("plot options");
  desc.add_options()("db", po::value<std::string>()->default_value("ctxlab.db"), "run store (SQLite file)")(
      "experiment", po::value<std::string>()->required(), "experiment name (see ctxlab ls)")(
      "kind", po::value<std::string>()->default_value("pareto"), "pareto | context | batch | compare")(
      "x", po::value<std::string>()->default_value(""), "x axis: a cost metric (pareto) or a param (context, batch)")(
      "y", po::value<std::string>()->default_value(""), "y axis: a metric (default: quality, or the kind's)")(
      "scope", po::value<std::string>()->default_value(""), "metric scope: \"\" = whole run, or a dataset label")(
      "where", po::value<std::vector<std::string>>()->composing(), "only runs whose param KEY equals VALUE (KEY=VALUE)")(
      "title", po::value<std::string>()->default_value(""), "figure title")(
      "stem", po::value<std::string>()->default_value(""), "file name stem (default EXPERIMENT_KIND)")(
      "out,o", po::value<std::string>()->default_value("plots"), "output folder");
  po::variables_map vm;
  if (!parse_options("plot", "--experiment NAME [--kind pareto|context|batch|compare] [--x M] [--y M] [-o DIR]", desc, args, vm))
    return 0;
  const std::string path = vm["db"].as<std::string>();
  if (!std::ifstream(path)) fail(path, ": no such run store");
  store::RunStore store(path);
  const std::string experiment = vm["experiment"].as<std::string>();
  const auto experiment_id = store.find_experiment(experiment);
  if (!experiment_id) fail(path, ": no experiment '", experiment, "' (see ctxlab ls)");
  store::RunFilter filter;
  filter.experiment = experiment;
  if (vm.count("where"))
    for (const auto& w : vm["where"].as<std::vector<std::string>>()) {
      const size_t eq = w.find('=');
      if (eq == std::string::npos || eq == 0) fail("--where ", w, ": expected KEY=VALUE");
      filter.params[w.substr(0, eq)] = w.substr(eq + 1);
    }
  plots::PlotRequest request;
  request.kind = vm["kind"].as<std::string>();
  request.x = vm["x"].as<std::string>();
  request.y = vm["y"].as<std::string>();
  request.scope = vm["scope"].as<std::string>();
  request.title = vm["title"].as<std::string>();
  request.out_dir = vm["out"].as<std::string>();
  request.stem = vm["stem"].as<std::string>();
  const auto files = plots::render_plot(store.run_summaries(filter), experiment, request);
  for (const auto* f : {&files.png, &files.svg, &files.data, &files.script}) {
    store::ArtifactRecord a;
    a.experiment_id = *experiment_id;
    a.kind = "plot:" + request.kind;
    a.path = *f;
    store.add_artifact(a);
    std::printf("wrote %s\n", f->c_str());
  }
  return 0;
}

}  // namespace ctx::cli
