#include "plots/figures.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "core/base/error.h"
#include "plots/gnuplot.h"
#include "plots/label_layout.h"

namespace ctx::plots {
namespace {

// Line colours (matplotlib's tab10): distinct, and readable on white.
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kPointTypes[] = {7, 5, 9, 11, 13, 15};  // filled circle, square, triangles, diamond, pentagon

std::string axis_name(const PlotData& d, const std::string& name, bool is_x) {
  const bool metric = is_x ? d.kind->x_source == XSource::metric : true;
  return metric && !d.scope.empty() ? str_cat(name, " [", d.scope, "]") : name;
}

// Text for a '#' comment line: a line break in it (a run's error message) would end the comment.
std::string comment(std::string text) {
  std::replace_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return text;
}

std::string data_header(const PlotData& d, const std::string& stem) {
  std::string h = str_cat("# ctxlab plot data; `gnuplot ", stem, ".gp` in this folder renders ", stem, ".png and ",
                          stem, ".svg from it\n", "# experiment: ", comment(d.experiment), "\n", "# kind: ", d.kind->name, "\n");
  if (d.kind->x_source != XSource::none)
    h += str_cat("# x: ", d.kind->x_source == XSource::param ? "param " : "metric ", d.x, "\n");
  h += str_cat("# y: metric ", d.y, "\n", "# scope: \"", d.scope, "\"\n");
  for (const auto& line : d.left_out) h += "# left out: " + comment(line) + "\n";
  return h;
}

std::string row(const PlotPoint& p, double x) {
  return str_cat(p.run->run.id, " ", data_number(x), " ", data_number(p.y));
}

// Title, axis labels, grid and colours shared by all kinds.
std::string script_header(const PlotData& d, const std::string& stem, const std::string& xlabel,
                          const std::string& ylabel) {
  std::string s = str_cat("# ctxlab plot script: run `gnuplot ", stem, ".gp` in this folder to re-render ", stem,
                          ".png and ", stem, ".svg from ", stem, ".dat\n",
                          "set encoding utf8\n",
                          "set title ", gnuplot_string(d.title), " noenhanced font ',14'\n",
                          "set xlabel ", gnuplot_string(xlabel), " noenhanced\n",
                          "set ylabel ", gnuplot_string(ylabel), " noenhanced\n",
                          "set grid lc rgb '#dddddd' lt 1\n",
                          "set border 3 lc rgb '#404040'\n",
                          "set tics nomirror\n");
  for (size_t i = 0; i < std::size(kColors); ++i)
    s += str_cat("set linetype ", i + 1, " lc rgb '", kColors[i], "' lw 2\n");
  return s;
}

// [lo, hi] widened by `pad` of the span on both sides (a unit span around a single value).
std::pair<double, double> padded(double lo, double hi, double pad) {
  const double span = hi > lo ? hi - lo : std::max(std::abs(hi), 1.0);
  return {lo - pad * span, hi + pad * span};
}

Figure pareto(const PlotData& d, const std::string& stem) {
  std::vector<std::pair<double, double>> xy;
  std::vector<std::string> labels;
  for (const auto& p : d.points) {
    xy.emplace_back(p.x, p.y);
    labels.push_back(p.label);
  }
  const std::vector<size_t> front = pareto_front(xy);
  std::vector<bool> on_front(xy.size(), false);
  for (size_t i : front) on_front[i] = true;

  // Fixed margins, so the plot area's size in pixels is known to the label layout.
  const double left = 0.08, right = 0.97, bottom = 0.14, top = 0.88;
  auto [x_min, x_max] = std::minmax_element(xy.begin(), xy.end());
  auto [y_lo, y_hi] = std::minmax_element(xy.begin(), xy.end(), [](auto& a, auto& b) { return a.second < b.second; });
  PlotArea area;
  std::tie(area.x_min, area.x_max) = padded(x_min->first, x_max->first, 0.08);
  std::tie(area.y_min, area.y_max) = padded(y_lo->second, y_hi->second, 0.1);
  area.width_px = (right - left) * 1200;
  area.height_px = (top - bottom) * 800;
  std::vector<size_t> order = front;  // front labels first: they get the clear spots
  for (size_t i = 0; i < xy.size(); ++i)
    if (!on_front[i]) order.push_back(i);
  std::vector<Segment> steps;  // as gnuplot's `steps` draws the front: across, then up
  for (size_t k = 1; k < front.size(); ++k) {
    const auto [xa, ya] = xy[front[k - 1]];
    const auto [xb, yb] = xy[front[k]];
    steps.push_back({xa, ya, xb, ya});
    steps.push_back({xb, ya, xb, yb});
  }
  const std::vector<LabelPlacement> placed = place_labels(xy, labels, area, order, steps);

  Figure f;
  f.data = data_header(d, stem) + "# block 0: every point\n# run_id x y on_front label label_x label_y label_align\n";
  for (size_t i = 0; i < xy.size(); ++i)
    f.data += str_cat(row(d.points[i], xy[i].first), " ", on_front[i] ? 1 : 0, " ", data_text(labels[i]), " ",
                      data_number(placed[i].x, 6), " ", data_number(placed[i].y, 6), " ", static_cast<int>(placed[i].align), "\n");
  f.data += "\n\n# block 1: the Pareto front in x order\n# run_id x y label\n";
  for (size_t i : front) f.data += str_cat(row(d.points[i], xy[i].first), " ", data_text(labels[i]), "\n");

  const std::string file = gnuplot_string(stem + ".dat");
  f.script = script_header(d, stem, axis_name(d, d.x, true) + "  (lower is better)",
                           axis_name(d, d.y, false) + "  (higher is better)");
  f.script += str_cat("set lmargin at screen ", left, "\nset rmargin at screen ", right, "\nset bmargin at screen ", bottom,
                      "\nset tmargin at screen ", top, "\n",
                      "set key at screen 0.5,0.03 center center horizontal samplen 2 width 3\n",
                      "set xrange [", data_number(area.x_min, 6), ":", data_number(area.x_max, 6), "]\n",
                      "set yrange [", data_number(area.y_min, 6), ":", data_number(area.y_max, 6), "]\n");
  std::string plot = str_cat(
      "plot ", file, " index 0 using 2:($4 == 0 ? $3 : NaN) with points pt 7 ps 1.4 lc rgb '#b8b8b8' title 'dominated', \\\n",
      "     ", file, " index 1 using 2:3 with steps lw 2.5 lc rgb '#1f4e9c' title 'Pareto front', \\\n",
      "     ", file, " index 1 using 2:3 with points pt 7 ps 1.7 lc rgb '#1f4e9c' notitle");
  // Labels: front ones dark, dominated ones grey; one clause per alignment, as gnuplot aligns a
  // whole clause alike.
  const char* aligns[] = {"left", "right", "center"};
  for (int front_flag : {1, 0})
    for (int a = 0; a < 3; ++a)
      plot += str_cat(", \\\n     ", file, " index 0 using ($4 == ", front_flag, " && $8 == ", a,
                      " ? $6 : NaN):7:5 with labels ", aligns[a], " font ',9' tc rgb '",
                      front_flag ? "#101010" : "#8a8a8a", "' noenhanced notitle");
  f.script += render_to_png_and_svg(stem, plot);
  return f;
}

Figure sweep(const PlotData& d, const std::string& stem) {
  std::map<std::string, std::vector<const PlotPoint*>> series;  // label order
  double lo = INFINITY, hi = -INFINITY;
  std::set<double> xs;
  for (const auto& p : d.points) {
    series[p.label].push_back(&p);
    lo = std::min(lo, p.x);
    hi = std::max(hi, p.x);
    xs.insert(p.x);
  }
  const bool log2_x = lo > 0 && hi / lo >= 8;

  Figure f;
  f.data = data_header(d, stem) + "# one block per combination, in x order: run_id x y label\n";
  const std::string file = gnuplot_string(stem + ".dat");
  std::string plot = "plot";
  size_t index = 0;
  for (auto& [label, points] : series) {
    std::stable_sort(points.begin(), points.end(), [](auto* a, auto* b) { return a->x < b->x; });
    f.data += str_cat(index ? "\n\n" : "", "# block ", index, ": ", label, "\n");
    for (const auto* p : points) f.data += str_cat(row(*p, p->x), " ", data_text(label), "\n");
    plot += str_cat(index ? ", \\\n    " : "", " ", file, " index ", index, " using 2:3 with linespoints lt ",
                    index % std::size(kColors) + 1, " pt ", kPointTypes[index % std::size(kPointTypes)],
                    " ps 1.3 title ", gnuplot_string(label), " noenhanced");
    ++index;
  }

  f.script = script_header(d, stem, d.x, axis_name(d, d.y, false));
  f.script += "set key outside right top vertical Left reverse samplen 3 spacing 1.3\n"
              "set offsets graph 0.03, graph 0.03, graph 0.06, graph 0.06\n";
  if (log2_x) f.script += "set logscale x 2\n";
  // Times, rates and bytes are never negative: start the axis at 0 rather than below it.
  if (std::all_of(d.points.begin(), d.points.end(), [](const PlotPoint& p) { return p.y >= 0; }))
    f.script += "set yrange [0:*]\n";
  if (xs.size() <= 16) {  // tics at the swept values themselves
    std::string tics;
    for (double x : xs) tics += (tics.empty() ? "" : ", ") + data_number(x);
    f.script += "set xtics (" + tics + ")\n";
  }
  f.script += render_to_png_and_svg(stem, plot);
  return f;
}

Figure compare(const PlotData& d, const std::string& stem) {
  std::vector<const PlotPoint*> bars;
  std::map<std::string, int> count;
  for (const auto& p : d.points) {
    bars.push_back(&p);
    ++count[p.label];
  }
  std::stable_sort(bars.begin(), bars.end(), [](auto* a, auto* b) { return a->label < b->label; });
  std::map<std::string, size_t> group;  // label -> colour, in label order
  for (const auto& [label, n] : count) group.emplace(label, group.size());

  Figure f;
  f.data = data_header(d, stem) + "# one bar per run, in label order: run_id position y group label\n";
  double lo = 0, hi = 0;
  size_t tic_chars = 0, first_tic_chars = 0;
  for (size_t i = 0; i < bars.size(); ++i) {
    const PlotPoint& p = *bars[i];
    // Runs sharing a combination are told apart by their id.
    const std::string tic = count[p.label] > 1 ? str_cat(p.label, " (run ", p.run->run.id, ")") : p.label;
    tic_chars = std::max(tic_chars, tic.size());
    if (i == 0) first_tic_chars = tic.size();
    f.data += str_cat(row(p, static_cast<double>(i)), " ", group[p.label] % std::size(kColors) + 1, " ", data_text(tic), "\n");
    lo = std::min(lo, p.y);
    hi = std::max(hi, p.y);
  }

  if (lo == 0 && hi == 0) hi = 1;  // all zero: still a visible axis
  const std::string file = gnuplot_string(stem + ".dat");
  f.script = script_header(d, stem, "", axis_name(d, d.y, false));
  // Bars start at zero; the headroom keeps the printed values inside the frame.
  f.script += str_cat("unset key\nunset xlabel\nset grid noxtics\n",
                      "set style fill solid 0.85 border rgb '#404040'\nset boxwidth 0.7\n",
                      "set xrange [-0.6:", data_number(bars.size() - 0.4), "]\n",
                      "set yrange [", data_number(lo * 1.12, 6), ":", data_number(hi * 1.12, 6), "]\n",
                      "set xtics rotate by 30 right noenhanced font ',10'\n",
                      // Room for the slanted tic labels: they hang down-left of their bars.
                      "set bmargin ", 3 + tic_chars / 5, "\nset lmargin ", std::max<size_t>(10, first_tic_chars * 4 / 5),
                      "\nset rmargin 4\n");
  std::string plot = str_cat("plot ", file, " using 2:3:4:xtic(5) with boxes lc variable notitle, \\\n     ", file,
                             " using 2:3:(sprintf('%.4g', $3)) with labels offset 0,0.8 font ',10' notitle");
  f.script += render_to_png_and_svg(stem, plot);
  return f;
}

}  // namespace

Figure make_figure(const PlotData& data, const std::string& stem) {
  const std::string kind = data.kind->name;
  if (kind == "pareto") return pareto(data, stem);
  if (kind == "compare") return compare(data, stem);
  return sweep(data, stem);  // context, batch
}

}  // namespace ctx::plots
