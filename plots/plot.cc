// render_plot (plot.h): resolve the request, write data and script, run gnuplot.
#include "plots/plot.h"

#include <cctype>
#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "plots/figures.h"
#include "plots/gnuplot.h"
#include "plots/plot_data.h"

namespace ctx::plots {
namespace {

namespace fs = std::filesystem;

// "<experiment>_<kind>" made a safe file name: only [A-Za-z0-9._-], the rest '_'.
std::string default_stem(const std::string& experiment, const std::string& kind) {
  std::string stem = experiment + "_" + kind;
  for (char& c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return stem;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) fail("cannot write ", path.string());
}

void require_output(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) == 0)
    fail("gnuplot wrote no ", path.string());
}

}  // namespace

PlotFiles render_plot(const std::vector<store::RunSummary>& runs, const std::string& experiment,
                      const PlotRequest& request) {
  const PlotData data = collect_plot_data(runs, experiment, request);
  const std::string stem = request.stem.empty() ? default_stem(experiment, data.kind->name) : request.stem;
  if (stem.find('/') != std::string::npos) fail("plot stem \"", stem, "\" must be a file name, not a path");
  const fs::path dir = request.out_dir.empty() ? fs::path(".") : fs::path(request.out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) fail("cannot create plot folder ", dir.string(), ": ", ec.message());

  const Figure figure = make_figure(data, stem);
  const PlotFiles files{(dir / (stem + ".dat")).string(), (dir / (stem + ".gp")).string(),
                        (dir / (stem + ".png")).string(), (dir / (stem + ".svg")).string()};
  for (const auto& stale : {files.png, files.svg}) fs::remove(stale, ec);  // so a failure leaves no old image
  write_file(files.data, figure.data);
  write_file(files.script, figure.script);
  run_gnuplot(dir.string(), stem + ".gp");
  require_output(files.png);
  require_output(files.svg);
  return files;
}

}  // namespace ctx::plots
