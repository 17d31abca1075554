// The values a figure shows: a PlotRequest resolved against runs (kind defaults applied, metrics and
// params looked up, left-out runs noted), before any kind-specific layout.
#pragma once

#include <string>
#include <vector>

#include "experiments/store/run_store.h"
#include "plots/plot.h"

namespace ctx::plots {

enum class XSource { metric, param, none };

// A plot kind and its defaults (plot.h).
struct PlotKind {
  const char* name;
  XSource x_source;
  const char* default_x;  // metric or param name; "" when x_source is none
  const char* default_y;  // metric name
};

// The kind named `name`; throws ctx::Error listing the known kinds.
const PlotKind& plot_kind(const std::string& name);

struct PlotPoint {
  const store::RunSummary* run;
  double x = 0;  // the x metric or param; the run's position for XSource::none
  double y = 0;
  std::string label;  // compact combination label (labels.h)
};

struct PlotData {
  const PlotKind* kind = nullptr;
  std::string experiment, x, y, scope, title;  // x, y: names after defaults; title after derivation
  std::vector<PlotPoint> points;               // ok runs with both values, in the order given
  std::vector<std::string> left_out;           // "run 7 (label): why", one per run not plotted
};

// Resolves `request` over `runs`. Throws ctx::Error when the kind is unknown, no run is ok, a metric
// or param is recorded by no ok run (listing those that are), or no ok run has both values.
PlotData collect_plot_data(const std::vector<store::RunSummary>& runs, const std::string& experiment,
                           const PlotRequest& request);

}  // namespace ctx::plots
