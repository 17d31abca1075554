// Where to print each point's label in a scatter plot so that labels overlap neither each other,
// nor the points, nor the frame: gnuplot places every label at one fixed offset, which stacks the
// labels of nearby points on top of each other.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace ctx::plots {

// The plot area: its axis ranges (linear axes) and its size on the canvas, with the label font's
// mean character width and line height, all in pixels.
struct PlotArea {
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
  double width_px = 1000, height_px = 600;
  double char_width_px = 6.3, line_height_px = 13;
};

// A horizontal or vertical line drawn in the plot (the front's steps), in data coordinates; labels
// avoid it as they avoid points.
struct Segment {
  double x0, y0, x1, y1;
};

enum class Align { left, right, center };  // which end of the text sits at the anchor

struct LabelPlacement {
  double x = 0, y = 0;  // text anchor in data coordinates
  Align align = Align::left;
};

// One placement per point (same order). Labels are placed greedily in `order` (earlier ones get the
// better spots), each at the candidate position around its point that overlaps least with the
// labels placed before it, all points, `lines` and the area's edges.
std::vector<LabelPlacement> place_labels(const std::vector<std::pair<double, double>>& points,
                                         const std::vector<std::string>& labels, const PlotArea& area,
                                         const std::vector<size_t>& order, const std::vector<Segment>& lines = {});

}  // namespace ctx::plots
