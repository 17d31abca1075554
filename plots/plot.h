// Plots from the run store only (DESIGN.md plots/): the figures of the seeds' READMEs, rendered by
// gnuplot (Debian package gnuplot-nox; pngcairo and svg terminals) from a data file and a script that
// are saved beside each image, so every figure can be re-rendered and audited.
//
// Kinds:
//   pareto   x = a cost metric (default peak_mem_gb_p95; lower is better), y = a quality metric
//            (default quality; higher is better). Points on the Pareto front drawn solid and joined,
//            dominated points faded, every point labelled with its plugin combination.
//   context  y (default latency_ms_p50) against params.context_length, one line per plugin combination.
//   batch    y (default throughput_tok_s_p50) against params.batch_size, one line per plugin combination.
//   compare  bars of y (default quality) per run, grouped by plugin combination.
// Only runs with status ok are plotted (the others are listed in the data file as comments).
// Errors (no runs, unknown metric, gnuplot missing or failing) throw ctx::Error naming what is wrong.
#pragma once

#include <string>
#include <vector>

#include "experiments/store/run_store.h"

namespace ctx::plots {

struct PlotRequest {
  std::string kind;  // pareto | context | batch | compare
  std::string x;     // metric name (pareto) or param name (context/batch); "" = the kind's default
  std::string y;     // metric name; "" = the kind's default
  std::string scope; // metric scope ("" = whole run, or a dataset label)
  std::string title; // "" = derived from experiment, kind and axes
  std::string out_dir;
  std::string stem;  // file stem; "" = "<experiment>_<kind>"
};

struct PlotFiles {
  std::string data, script, png, svg;
};

// The label of a run's plugin combination from its params (attention, kv, kv_quant, quant), leaving
// out parts that are "none"; e.g. "flash + l2norm(keep_ratio=0.25) + int8".
std::string combination_label(const store::RunSummary& run);

// Indices into `points` (x cost, lower better; y quality, higher better) of the Pareto front, sorted
// by x: a point is on the front when no other point has x <= and y >= with one strict.
std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points);

// Writes data, script and renders PNG and SVG for `runs` (already filtered to one experiment).
PlotFiles render_plot(const std::vector<store::RunSummary>& runs, const std::string& experiment,
                      const PlotRequest& request);

}  // namespace ctx::plots
