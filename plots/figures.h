// The data file and gnuplot script of each plot kind (plot.h describes the figures).
//
// Data files are whitespace-separated with quoted labels, headed by '#' comments naming the
// experiment, kind, axes and the runs left out; the first column of every row is the run id.
//   pareto   block 0: run_id x y on_front label label_x label_y label_align(0 left, 1 right, 2 centre)
//            block 1: the front in x order: run_id x y label
//   context, batch: one block per combination (label order), rows in x order: run_id x y label
//   compare  run_id position y group label     (bars in label order, group = label's colour index)
// Blocks are separated by two blank lines (gnuplot's `index`).
#pragma once

#include <string>

#include "plots/plot_data.h"

namespace ctx::plots {

struct Figure {
  std::string data;    // contents of <stem>.dat
  std::string script;  // contents of <stem>.gp, reading <stem>.dat, writing <stem>.png and <stem>.svg
};

Figure make_figure(const PlotData& data, const std::string& stem);

}  // namespace ctx::plots
