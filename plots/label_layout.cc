#include "plots/label_layout.h"

#include <algorithm>
#include <limits>

#include "core/base/error.h"

namespace ctx::plots {
namespace {

struct Box {
  double x0, y0, x1, y1;  // pixels, y up
};

double overlap(const Box& a, const Box& b) {
  const double w = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  const double h = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  return w > 0 && h > 0 ? w * h : 0;
}

Box text_box(double ax, double ay, Align align, double width, double height) {
  const double x0 = align == Align::left ? ax : align == Align::right ? ax - width : ax - width / 2;
  return {x0, ay - height / 2, x0 + width, ay + height / 2};
}

struct Candidate {
  double dx, dy;  // in units of (gap, line height)
  Align align;
};

// Beside, above and below first, then diagonals, then the same a line further out.
constexpr Candidate kCandidates[] = {
    {1, 0, Align::left},    {-1, 0, Align::right},  {0, 1, Align::center},   {0, -1, Align::center},
    {0.8, 0.8, Align::left}, {0.8, -0.8, Align::left}, {-0.8, 0.8, Align::right}, {-0.8, -0.8, Align::right},
    {0, 2, Align::center},  {0, -2, Align::center}, {0.8, 1.8, Align::left},  {0.8, -1.8, Align::left},
    {-0.8, 1.8, Align::right}, {-0.8, -1.8, Align::right},
};

}  // namespace

std::vector<LabelPlacement> place_labels(const std::vector<std::pair<double, double>>& points,
                                         const std::vector<std::string>& labels, const PlotArea& area,
                                         const std::vector<size_t>& order, const std::vector<Segment>& lines) {
  CTX_CHECK(points.size() == labels.size() && order.size() == points.size());
  const double sx = area.width_px / (area.x_max - area.x_min), sy = area.height_px / (area.y_max - area.y_min);
  auto px = [&](double x) { return (x - area.x_min) * sx; };
  auto py = [&](double y) { return (y - area.y_min) * sy; };
  const double gap = 9, line = area.line_height_px, marker = 6;

  std::vector<Box> taken;  // points' markers and the labels placed so far
  for (const auto& [x, y] : points) taken.push_back({px(x) - marker, py(y) - marker, px(x) + marker, py(y) + marker});
  for (const Segment& l : lines)  // a line counts as a band a few pixels wide
    taken.push_back({std::min(px(l.x0), px(l.x1)) - 2, std::min(py(l.y0), py(l.y1)) - 2,
                     std::max(px(l.x0), px(l.x1)) + 2, std::max(py(l.y0), py(l.y1)) + 2});
  const Box frame{0, 0, area.width_px, area.height_px};

  std::vector<LabelPlacement> placements(points.size());
  for (size_t i : order) {
    const double width = labels[i].size() * area.char_width_px;
    double best_cost = std::numeric_limits<double>::infinity();
    Box best_box{};
    for (size_t c = 0; c < std::size(kCandidates); ++c) {
      const Candidate& cand = kCandidates[c];
      const double ax = px(points[i].first) + cand.dx * gap, ay = py(points[i].second) + cand.dy * line;
      const Box box = text_box(ax, ay, cand.align, width, line);
      const double area_px = (box.x1 - box.x0) * (box.y1 - box.y0);
      double cost = 3 * (area_px - overlap(box, frame)) + 0.5 * c;  // outside the frame is worst
      for (const Box& other : taken) cost += overlap(box, other);
      if (cost < best_cost) {
        best_cost = cost;
        best_box = box;
        placements[i] = {area.x_min + ax / sx, area.y_min + ay / sy, cand.align};
      }
    }
    taken.push_back(best_box);
  }
  return placements;
}

}  // namespace ctx::plots
