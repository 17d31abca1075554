#include "plots/plot_data.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <set>

#include "core/base/error.h"
#include "plots/labels.h"

namespace ctx::plots {
namespace {

constexpr PlotKind kKinds[] = {
    {"pareto", XSource::metric, "peak_mem_gb_p95", "quality"},
    {"context", XSource::param, "context_length", "latency_ms_p50"},
    {"batch", XSource::param, "batch_size", "throughput_tok_s_p50"},
    {"compare", XSource::none, "", "quality"},
};

// RunSummary::metric lives in the store library; plots need only the plain struct.
std::optional<double> metric_of(const store::RunSummary& run, const std::string& name, const std::string& scope) {
  for (const auto& m : run.metrics)
    if (m.name == name && m.scope == scope) return m.value;
  return std::nullopt;
}

std::optional<double> param_of(const store::RunSummary& run, const std::string& name) {
  auto it = run.run.params.find(name);
  if (it == run.run.params.end()) return std::nullopt;
  const std::string& text = it->second;
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string join(const std::set<std::string>& items) {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
  return s.empty() ? "none" : s;
}

// Throws unless some ok run records metric `name` in `scope`, listing what they do record.
void require_metric(const std::vector<const store::RunSummary*>& ok, const std::string& experiment,
                    const std::string& name, const std::string& scope) {
  std::set<std::string> in_scope, scopes;
  for (const auto* run : ok)
    for (const auto& m : run->metrics) {
      if (m.name == name && m.scope == scope) return;
      if (m.scope == scope) in_scope.insert(m.name);
      scopes.insert(str_cat('"', m.scope, '"'));
    }
  fail("no ok run of experiment \"", experiment, "\" has metric \"", name, "\" in scope \"", scope,
       "\"; metrics available there: ", join(in_scope), in_scope.empty() ? str_cat(" (scopes recorded: ", join(scopes), ")") : "");
}

void require_param(const std::vector<const store::RunSummary*>& ok, const std::string& experiment,
                   const std::string& name) {
  std::set<std::string> keys;
  for (const auto* run : ok) {
    if (param_of(*run, name)) return;
    for (const auto& [k, v] : run->run.params) keys.insert(k);
  }
  fail("no ok run of experiment \"", experiment, "\" has a numeric param \"", name, "\"; params available: ", join(keys));
}

std::string derived_title(const PlotData& d) {
  std::string what = d.kind->x_source == XSource::none ? str_cat(d.y, " per run") : str_cat(d.y, " vs ", d.x);
  if (std::string(d.kind->name) == "pareto") what = "Pareto front of " + what;
  return str_cat(d.experiment, ": ", what, d.scope.empty() ? "" : str_cat(" [", d.scope, "]"));
}

}  // namespace

const PlotKind& plot_kind(const std::string& name) {
  std::string known;
  for (const auto& kind : kKinds) {
    if (name == kind.name) return kind;
    known += (known.empty() ? "" : ", ") + std::string(kind.name);
  }
  fail("unknown plot kind \"", name, "\"; known kinds: ", known);
}

PlotData collect_plot_data(const std::vector<store::RunSummary>& runs, const std::string& experiment,
                           const PlotRequest& request) {
  PlotData d;
  d.kind = &plot_kind(request.kind);
  d.experiment = experiment;
  d.scope = request.scope;
  d.y = request.y.empty() ? d.kind->default_y : request.y;
  if (d.kind->x_source == XSource::none && !request.x.empty())
    fail("plot kind ", d.kind->name, " has no x axis to set (got x \"", request.x, "\")");
  d.x = request.x.empty() ? d.kind->default_x : request.x;

  std::vector<const store::RunSummary*> ok;
  for (const auto& run : runs) {
    if (run.run.status == "ok") ok.push_back(&run);
    else
      d.left_out.push_back(str_cat("run ", run.run.id, " (", combination_label(run), "): status ", run.run.status,
                                   run.run.message.empty() ? "" : ": " + run.run.message));
  }
  if (ok.empty())
    fail("no runs with status ok to plot for experiment \"", experiment, "\" (", runs.size(), " runs in all)");
  require_metric(ok, experiment, d.y, d.scope);
  if (d.kind->x_source == XSource::metric) require_metric(ok, experiment, d.x, d.scope);
  if (d.kind->x_source == XSource::param) require_param(ok, experiment, d.x);

  std::vector<const store::RunSummary*> plotted;
  for (const auto* run : ok) {
    std::optional<double> y = metric_of(*run, d.y, d.scope);
    std::optional<double> x = d.kind->x_source == XSource::metric  ? metric_of(*run, d.x, d.scope)
                              : d.kind->x_source == XSource::param ? param_of(*run, d.x)
                                                                   : std::optional<double>(plotted.size());
    std::string why = !y                    ? str_cat("no metric ", d.y)
                      : !x                  ? str_cat(d.kind->x_source == XSource::param ? "no numeric param " : "no metric ", d.x)
                      : !std::isfinite(*y)  ? str_cat("metric ", d.y, " is not finite")
                      : !std::isfinite(*x)  ? str_cat(d.x, " is not finite")
                                            : "";
    if (!why.empty()) {
      d.left_out.push_back(str_cat("run ", run->run.id, " (", combination_label(*run), "): ", why));
      continue;
    }
    plotted.push_back(run);
    d.points.push_back({run, *x, *y, ""});
  }
  if (d.points.empty()) fail("no ok run of experiment \"", experiment, "\" has both ", d.x, " and ", d.y);
  std::vector<std::string> labels = compact_combination_labels(plotted);
  for (size_t i = 0; i < d.points.size(); ++i) d.points[i].label = labels[i];
  d.title = request.title.empty() ? derived_title(d) : request.title;
  return d;
}

}  // namespace ctx::plots
