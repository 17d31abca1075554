// plots/: Pareto fronts, combination labels, and every plot kind rendered by gnuplot from
// hand-built run summaries. gnuplot must be installed (Debian package gnuplot-nox): the rendering
// tests fail, not skip, without it.
//
// The RealisticSweep tests double as the gallery of the figures: with CTXLAB_PLOTS_CHECK_DIR set
// they render into that folder to be looked at, e.g.
//   CTXLAB_PLOTS_CHECK_DIR=/tmp/plots_check build/tests/plot_test --gtest_filter='RealisticSweep*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include "plots/labels.h"
#include "plots/plot.h"
#include "tests/support/error_of.h"
#include "tests/support/test_paths.h"

namespace ctx::plots {
namespace {

namespace fs = std::filesystem;
using store::MetricRecord;
using store::RunSummary;
using Points = std::vector<std::pair<double, double>>;
using Indices = std::vector<size_t>;

RunSummary make_run(int64_t id, std::map<std::string, std::string> params, std::vector<MetricRecord> metrics,
                    const std::string& status = "ok") {
  RunSummary r;
  r.run.id = id;
  r.run.status = status;
  r.run.message = status == "ok" ? "" : "out of memory\nat prefill";  // one comment line in the data file
  r.run.params = std::move(params);
  r.metrics = std::move(metrics);
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One data row read back: the numeric columns before the quoted label, the label, the rest.
struct Row {
  int64_t run_id = 0;
  std::vector<double> numbers;  // columns after run_id up to the label
  std::string label;
};

// The data file's blocks (separated by two blank lines), comment lines skipped.
std::vector<std::vector<Row>> read_blocks(const std::string& path) {
  std::vector<std::vector<Row>> blocks(1);
  std::stringstream in(read_text(path));
  std::string line;
  int blank = 0;
  while (std::getline(in, line)) {
    if (line.empty()) {
      if (++blank == 2) blocks.emplace_back();
      continue;
    }
    blank = 0;
    if (line[0] == '#') continue;
    std::stringstream fields(line);
    Row row;
    fields >> row.run_id >> std::ws;
    while (fields.peek() != '"') {
      double v;
      fields >> v >> std::ws;
      row.numbers.push_back(v);
    }
    fields >> std::quoted(row.label);
    blocks.back().push_back(row);
  }
  return blocks;
}

void expect_rendered(const PlotFiles& files) {
  for (const auto& path : {files.data, files.script, files.png, files.svg})
    EXPECT_TRUE(fs::is_regular_file(path)) << path;
  const std::string png = read_text(files.png);
  ASSERT_GE(png.size(), 8u) << files.png;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << files.png;
  EXPECT_NE(read_text(files.svg).find("<svg"), std::string::npos) << files.svg;
}

std::string out_dir(const std::string& name) { return test::temp_dir() + "/" + name; }

PlotRequest req(const std::string& kind, const std::string& dir) {
  PlotRequest r;
  r.kind = kind;
  r.out_dir = out_dir(dir);
  return r;
}

PlotRequest with_y(PlotRequest r, const std::string& y, const std::string& scope = "") {
  r.y = y;
  r.scope = scope;
  return r;
}

// ---- pareto_front ----

TEST(ParetoFront, EmptyAndSinglePoint) {
  EXPECT_EQ(pareto_front({}), Indices{});
  EXPECT_EQ(pareto_front({{2.0, 3.0}}), (Indices{0}));
}

TEST(ParetoFront, AllOnFrontSortedByX) {
  EXPECT_EQ(pareto_front({{3, 30}, {1, 10}, {2, 20}}), (Indices{1, 2, 0}));
}

TEST(ParetoFront, DominatedPointsExcluded) {
  // (2,4) is dominated by (1,5), (3,6) by (2,7).
  EXPECT_EQ(pareto_front({{1, 5}, {2, 4}, {3, 6}, {2, 7}}), (Indices{0, 3}));
}

TEST(ParetoFront, TiesOnOneAxisDominate) {
  EXPECT_EQ(pareto_front({{1, 3}, {1, 5}}), (Indices{1}));  // same cost, better quality wins
  EXPECT_EQ(pareto_front({{2, 5}, {1, 5}}), (Indices{1}));  // same quality, lower cost wins
  EXPECT_EQ(pareto_front({{1, 5}, {2, 5}, {3, 6}}), (Indices{0, 2}));
}

TEST(ParetoFront, DuplicatesStayTogether) {
  EXPECT_EQ(pareto_front({{1, 5}, {2, 4}, {1, 5}}), (Indices{0, 2}));
  EXPECT_EQ(pareto_front({{2, 4}, {2, 4}}), (Indices{0, 1}));
}

TEST(ParetoFront, NanPointsNeverOnFront) {
  EXPECT_EQ(pareto_front({{NAN, 9}, {1, 5}, {2, NAN}}), (Indices{1}));
}

// ---- labels ----

TEST(CombinationLabel, LeavesOutNoneParts) {
  EXPECT_EQ(combination_label(make_run(1, {{"attention", "flash"}, {"kv", "l2norm:keep_ratio=0.25"},
                                           {"kv_quant", "none"}, {"quant", "int8"}}, {})),
            "flash + l2norm(keep_ratio=0.25) + int8");
  EXPECT_EQ(combination_label(make_run(1, {{"attention", "sdpa@1{}"}, {"kv", "none@1{}"}, {"quant", "none"}}, {})),
            "sdpa");
  EXPECT_EQ(combination_label(make_run(1, {{"context_length", "512"}}, {})), "none");
}

TEST(CombinationLabel, CanonicalSpecsInSlotOrder) {
  // Keys are read in attention, kv, kv_quant, quant order whatever the map order; versions dropped.
  EXPECT_EQ(combination_label(make_run(1, {{"quant", "nf4@1{block=64}"}, {"kv_quant", "kivi@1{bits=4}"},
                                           {"attention", "flash@1{block_kv=64}"}, {"batch_size", "4"}}, {})),
            "flash(block_kv=64) + kivi(bits=4) + nf4(block=64)");
  // Text that is no plugin spec is kept whole.
  EXPECT_EQ(combination_label(make_run(1, {{"attention", "odd{"}}, {})), "odd{");
}

TEST(CombinationLabel, CompactFormDropsParamsEqualAcrossRuns) {
  RunSummary a = make_run(1, {{"attention", "flash@1{block_kv=64}"}, {"kv", "l2norm@1{keep_ratio=0.25,prune_after=0}"}}, {});
  RunSummary b = make_run(2, {{"attention", "flash@1{block_kv=64}"}, {"kv", "l2norm@1{keep_ratio=0.5,prune_after=0}"}}, {});
  RunSummary c = make_run(3, {{"attention", "flash@1{block_kv=128}"}, {"kv", "none@1{}"}}, {});
  EXPECT_EQ(compact_combination_labels({&a, &b, &c}),
            (std::vector<std::string>{"flash(block_kv=64) + l2norm(keep_ratio=0.25)",
                                      "flash(block_kv=64) + l2norm(keep_ratio=0.5)", "flash(block_kv=128)"}));
}

// ---- rendering ----

std::vector<RunSummary> pareto_runs() {
  auto run = [](int64_t id, const std::string& kv, double mem, double quality, const std::string& status = "ok") {
    return make_run(id, {{"attention", "flash"}, {"kv", kv}},
                    {{"", "peak_mem_gb_p95", mem}, {"", "quality", quality}, {"narrativeqa", "quality", quality - 1}},
                    status);
  };
  return {run(1, "none", 2.0, 30),  run(2, "l2norm:keep_ratio=0.5", 1.5, 28),
          run(3, "l2norm:keep_ratio=0.25", 1.2, 21), run(4, "random:keep_ratio=0.5", 1.5, 22),  // dominated by 2
          run(5, "streaming", 1.8, 27),  // dominated by 2
          run(6, "snapkv", 1.0, 1, "oom")};
}

TEST(RenderPlot, ParetoListsFrontAndAllPoints) {
  const PlotFiles files = render_plot(pareto_runs(), "exp1", req("pareto", "pareto"));
  expect_rendered(files);
  EXPECT_EQ(files.png, out_dir("pareto") + "/exp1_pareto.png");

  const auto blocks = read_blocks(files.data);
  ASSERT_EQ(blocks.size(), 2u);
  ASSERT_EQ(blocks[0].size(), 5u);  // the oom run is left out
  std::map<int64_t, double> on_front;
  for (const Row& r : blocks[0]) on_front[r.run_id] = r.numbers.at(2);
  EXPECT_EQ(on_front, (std::map<int64_t, double>{{1, 1}, {2, 1}, {3, 1}, {4, 0}, {5, 0}}));
  EXPECT_EQ(blocks[0][1].numbers.at(0), 1.5);
  EXPECT_EQ(blocks[0][1].numbers.at(1), 28);

  // The front in x order, with x, y and label.
  ASSERT_EQ(blocks[1].size(), 3u);
  const int64_t ids[] = {3, 2, 1};
  const double xs[] = {1.2, 1.5, 2.0}, ys[] = {21, 28, 30};
  const char* labels[] = {"flash + l2norm(keep_ratio=0.25)", "flash + l2norm(keep_ratio=0.5)", "flash"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(blocks[1][i].run_id, ids[i]);
    EXPECT_EQ(blocks[1][i].numbers, (std::vector<double>{xs[i], ys[i]}));
    EXPECT_EQ(blocks[1][i].label, labels[i]);
  }
  const std::string data = read_text(files.data);
  EXPECT_NE(data.find("# left out: run 6 (flash + snapkv): status oom: out of memory at prefill"), std::string::npos);
  EXPECT_NE(data.find("# experiment: exp1"), std::string::npos);

  const std::string script = read_text(files.script);
  EXPECT_NE(script.find("set terminal pngcairo size 1200,800 enhanced font ',11'"), std::string::npos);
  EXPECT_NE(script.find("set terminal svg size 1200,800 dynamic enhanced"), std::string::npos);
  EXPECT_NE(script.find("'exp1_pareto.dat'"), std::string::npos);  // relative: re-runnable in its folder
  EXPECT_EQ(script.find(out_dir("pareto")), std::string::npos);
}

TEST(RenderPlot, ScopeAndExplicitAxesAndStem) {
  PlotRequest r = with_y(req("pareto", "scoped/deeper"), "quality", "narrativeqa");
  r.x = "quality";
  r.title = "my_title";
  r.stem = "fig";
  const PlotFiles files = render_plot(pareto_runs(), "exp1", r);
  expect_rendered(files);
  EXPECT_EQ(files.data, out_dir("scoped/deeper") + "/fig.dat");
  const auto blocks = read_blocks(files.data);
  ASSERT_EQ(blocks[0].size(), 5u);
  EXPECT_EQ(blocks[0][0].numbers.at(1), 29);  // the narrativeqa value, not the whole-run one
  EXPECT_NE(read_text(files.script).find("set title 'my_title' noenhanced"), std::string::npos);
}

TEST(RenderPlot, RunMissingMetricIsLeftOutAndListed) {
  auto runs = pareto_runs();
  runs[1].metrics.erase(runs[1].metrics.begin() + 1);  // run 2 loses its whole-run quality
  const PlotFiles files = render_plot(runs, "exp1", req("pareto", "missing"));
  const auto blocks = read_blocks(files.data);
  EXPECT_EQ(blocks[0].size(), 4u);
  std::vector<int64_t> front;  // without run 2, random and streaming join the front
  for (const Row& r : blocks[1]) front.push_back(r.run_id);
  EXPECT_EQ(front, (std::vector<int64_t>{3, 4, 5, 1}));
  EXPECT_NE(read_text(files.data).find("# left out: run 2 (flash + l2norm(keep_ratio=0.5)): no metric quality"),
            std::string::npos);
}

std::vector<RunSummary> sweep_runs(const std::string& param, std::vector<int> values) {
  std::vector<RunSummary> runs;
  int64_t id = 1;
  for (const char* attention : {"sdpa", "flash"})
    for (int v : values)
      runs.push_back(make_run(id++, {{"attention", attention}, {param, std::to_string(v)}},
                              {{"", "latency_ms_p50", v * (attention[0] == 's' ? 2.0 : 1.0)},
                               {"", "throughput_tok_s_p50", 100.0 * v}}));
  std::swap(runs[0], runs[2]);  // out of x order: the figure sorts
  return runs;
}

TEST(RenderPlot, ContextOneSeriesPerCombinationInXOrder) {
  const PlotFiles files =
      render_plot(sweep_runs("context_length", {512, 1024, 4096}), "ctx", req("context", "context"));
  expect_rendered(files);
  const auto blocks = read_blocks(files.data);
  ASSERT_EQ(blocks.size(), 2u);
  const char* labels[] = {"flash", "sdpa"};  // label order
  const double scale[] = {1, 2};
  for (size_t b = 0; b < 2; ++b) {
    ASSERT_EQ(blocks[b].size(), 3u);
    const double xs[] = {512, 1024, 4096};
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(blocks[b][i].label, labels[b]);
      EXPECT_EQ(blocks[b][i].numbers, (std::vector<double>{xs[i], xs[i] * scale[b]}));
    }
  }
  const std::string script = read_text(files.script);
  EXPECT_NE(script.find("set logscale x 2"), std::string::npos);  // 512..4096 spans 8x
  EXPECT_NE(script.find("title 'sdpa' noenhanced"), std::string::npos);
}

TEST(RenderPlot, BatchLinearAxisBelowEightfold) {
  const PlotFiles files =
      render_plot(sweep_runs("batch_size", {1, 2, 4}), "b", req("batch", "batch"));
  expect_rendered(files);
  const auto blocks = read_blocks(files.data);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0][2].numbers, (std::vector<double>{4, 400}));
  EXPECT_EQ(read_text(files.script).find("logscale"), std::string::npos);
}

TEST(RenderPlot, CompareOneBarPerRunInLabelOrder) {
  auto runs = pareto_runs();
  runs.push_back(make_run(7, {{"attention", "flash"}, {"kv", "none"}}, {{"", "quality", 31}}));  // repeats run 1
  const PlotFiles files = render_plot(runs, "exp1", req("compare", "compare"));
  expect_rendered(files);
  const auto blocks = read_blocks(files.data);
  ASSERT_EQ(blocks.size(), 1u);
  std::vector<std::string> labels;
  std::vector<double> positions, ys;
  for (const Row& r : blocks[0]) {
    labels.push_back(r.label);
    positions.push_back(r.numbers.at(0));
    ys.push_back(r.numbers.at(1));
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"flash (run 1)", "flash (run 7)", "flash + l2norm(keep_ratio=0.25)",
                                              "flash + l2norm(keep_ratio=0.5)", "flash + random", "flash + streaming"}));
  EXPECT_EQ(positions, (std::vector<double>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(ys, (std::vector<double>{30, 31, 21, 28, 22, 27}));
}

// ---- errors ----

TEST(RenderPlotErrors, UnknownKindListsKinds) {
  EXPECT_EQ(test::error_of([] { render_plot(pareto_runs(), "e", req("scatter", "err")); }),
            "unknown plot kind \"scatter\"; known kinds: pareto, context, batch, compare");
}

TEST(RenderPlotErrors, UnknownMetricListsAvailable) {
  EXPECT_EQ(test::error_of([] { render_plot(pareto_runs(), "e", with_y(req("pareto", "err"), "rouge")); }),
            "no ok run of experiment \"e\" has metric \"rouge\" in scope \"\"; metrics available there: "
            "peak_mem_gb_p95, quality");
  EXPECT_EQ(test::error_of([] { render_plot(pareto_runs(), "e", with_y(req("compare", "err"), "", "hotpotqa")); }),
            "no ok run of experiment \"e\" has metric \"quality\" in scope \"hotpotqa\"; metrics available there: none "
            "(scopes recorded: \"\", \"narrativeqa\")");
  EXPECT_EQ(test::error_of([] { render_plot(pareto_runs(), "e", req("context", "err")); }),
            "no ok run of experiment \"e\" has metric \"latency_ms_p50\" in scope \"\"; metrics available there: "
            "peak_mem_gb_p95, quality");
  EXPECT_EQ(test::error_of([] {
              render_plot(sweep_runs("batch_size", {1, 2}), "e", req("context", "err"));
            }),
            "no ok run of experiment \"e\" has a numeric param \"context_length\"; params available: attention, batch_size");
}

TEST(RenderPlotErrors, CompareHasNoX) {
  PlotRequest r = req("compare", "err");
  r.x = "context_length";
  EXPECT_EQ(test::error_of([&] { render_plot(pareto_runs(), "e", r); }),
            "plot kind compare has no x axis to set (got x \"context_length\")");
}

TEST(RenderPlot, DefaultStemIsAFileName) {
  const PlotFiles files = render_plot(pareto_runs(), "my exp/1", req("compare", "stem"));
  EXPECT_EQ(files.svg, out_dir("stem") + "/my_exp_1_compare.svg");
  expect_rendered(files);
}

TEST(RenderPlotErrors, NoOkRuns) {
  std::vector<RunSummary> runs = {make_run(1, {{"attention", "flash"}}, {}, "oom"),
                                  make_run(2, {{"attention", "sdpa"}}, {}, "failed")};
  EXPECT_EQ(test::error_of([&] { render_plot(runs, "e", req("pareto", "err")); }),
            "no runs with status ok to plot for experiment \"e\" (2 runs in all)");
  EXPECT_EQ(test::error_of([] { render_plot({}, "e", req("compare", "err")); }),
            "no runs with status ok to plot for experiment \"e\" (0 runs in all)");
}

TEST(RenderPlotErrors, GnuplotMissingOrFailing) {
  const std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", out_dir("empty_path").c_str(), 1);
  const std::string missing =
      test::error_of([] { render_plot(pareto_runs(), "e", req("pareto", "nognuplot")); });
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_EQ(missing, "gnuplot not found: install the Debian package gnuplot-nox");

  // A gnuplot that fails: the error names the script and carries its stderr on one line.
  const std::string bin = out_dir("fake_gnuplot");
  fs::create_directories(bin);
  std::ofstream(bin + "/gnuplot") << "#!/bin/sh\necho \"  line 3: unknown terminal\" >&2\necho oops >&2\nexit 1\n";
  fs::permissions(bin + "/gnuplot", fs::perms::owner_all);
  ::setenv("PATH", (bin + ":" + saved).c_str(), 1);
  const std::string failed =
      test::error_of([] { render_plot(pareto_runs(), "e", req("pareto", "failing")); });
  ::setenv("PATH", saved.c_str(), 1);
  EXPECT_EQ(failed, "gnuplot failed on " + out_dir("failing") + "/e_pareto.gp (exit 1): line 3: unknown terminal | oops");
}

// ---- the gallery: a realistic experiment, every kind ----

std::string gallery_dir() {
  const char* env = std::getenv("CTXLAB_PLOTS_CHECK_DIR");
  return env && *env ? env : out_dir("gallery");
}

struct Combination {
  std::string attention, kv, quant;
  double quality, weights_gb, kv_gb_at_8k, speed;  // speed: relative decode throughput
};

// Nine plugin combinations of a ~1B model, as canonical specs are stored: quality falls as the KV
// cache is pruned harder and weights are quantized; memory = weights + the KV kept.
std::vector<Combination> combinations() {
  const std::string flash = "flash@1{block_kv=64,block_q=64,num_splits=0}", sdpa = "sdpa@1{}", none = "none@1{}";
  auto l2 = [](const std::string& keep) { return "l2norm@1{keep=low,keep_ratio=" + keep + ",prune_after=0,skip_layers=[0,1]}"; };
  const std::string int8 = "int8@1{}", nf4 = "nf4@1{block=64,double_quant=true}";
  return {{sdpa, none, none, 34.6, 1.40, 0.60, 1.00},      {flash, none, none, 34.6, 1.40, 0.60, 1.12},
          {flash, l2("0.75"), none, 34.1, 1.40, 0.45, 1.18}, {flash, l2("0.5"), none, 31.9, 1.40, 0.30, 1.25},
          {flash, l2("0.25"), none, 24.8, 1.40, 0.15, 1.31}, {flash, none, int8, 34.3, 0.72, 0.60, 1.05},
          {flash, none, nf4, 32.2, 0.40, 0.60, 0.93},      {flash, l2("0.5"), int8, 31.4, 0.72, 0.30, 1.17},
          {sdpa, l2("0.5"), nf4, 28.7, 0.40, 0.30, 0.86}};
}

RunSummary gallery_run(int64_t id, const Combination& c, int context, int batch) {
  const double kv_gb = c.kv_gb_at_8k * context / 8192.0 * batch;
  return make_run(id,
                  {{"attention", c.attention}, {"kv", c.kv}, {"kv_quant", "none@1{}"}, {"quant", c.quant},
                   {"context_length", std::to_string(context)}, {"batch_size", std::to_string(batch)}},
                  {{"", "quality", c.quality - (8192.0 - context) / 8192.0},
                   {"", "peak_mem_gb_p95", 0.12 + c.weights_gb + kv_gb},
                   {"", "latency_ms_p50", (40 + context * 0.09) / c.speed * (1 + 0.1 * batch)},
                   {"", "throughput_tok_s_p50", 55 * c.speed * batch / (1 + 0.08 * batch)}});
}

TEST(RealisticSweep, RendersEveryKind) {
  std::vector<RunSummary> at_8k, by_context, by_batch;
  int64_t id = 1;
  for (const auto& c : combinations()) {
    at_8k.push_back(gallery_run(id++, c, 8192, 1));
    for (int context : {512, 1024, 2048, 4096, 8192}) by_context.push_back(gallery_run(id++, c, context, 1));
    for (int batch : {1, 2, 4, 8, 16}) by_batch.push_back(gallery_run(id++, c, 2048, batch));
  }
  at_8k.push_back(make_run(id++, {{"attention", "eager@1{}"}, {"kv", "none@1{}"}}, {}, "oom"));
  const std::string dir = gallery_dir();
  for (const auto& [kind, runs] : {std::pair{"pareto", &at_8k}, {"compare", &at_8k}, {"context", &by_context}, {"batch", &by_batch}}) {
    SCOPED_TRACE(kind);
    PlotRequest r;
    r.kind = kind;
    r.out_dir = dir;
    const PlotFiles files = render_plot(*runs, "llama_1b_longctx", r);
    expect_rendered(files);
  }
  // The front of the 8k runs (ids 1 + 11 k): sdpa + l2norm 0.5 + nf4, nf4, int8, then sdpa and flash
  // (equal memory and quality: both stay). flash + l2norm 0.5 + int8 (1.14 GB, 31.4) loses to nf4
  // (1.12 GB, 32.2); l2norm 0.75 (1.97 GB, 34.1) to int8 (1.44 GB, 34.3).
  const auto front = read_blocks(dir + "/llama_1b_longctx_pareto.dat").at(1);
  std::vector<int64_t> ids;
  for (const Row& r : front) ids.push_back(r.run_id);
  EXPECT_EQ(ids, (std::vector<int64_t>{89, 67, 56, 1, 12}));
}

}  // namespace
}  // namespace ctx::plots
