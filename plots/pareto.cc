// pareto_front (plot.h).
#include <algorithm>
#include <cmath>

#include "plots/plot.h"

namespace ctx::plots {

std::vector<size_t> pareto_front(const std::vector<std::pair<double, double>>& points) {
  // Sweep in x order (ties: higher y first). A point is on the front when its y is the best of its
  // x (equal points do not dominate each other, so duplicates all stay) and strictly better than
  // every y at a smaller x. Points with a NaN coordinate are neither on the front nor dominate.
  std::vector<size_t> order;
  for (size_t i = 0; i < points.size(); ++i)
    if (!std::isnan(points[i].first) && !std::isnan(points[i].second)) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (points[a].first != points[b].first) return points[a].first < points[b].first;
    return points[a].second > points[b].second;
  });

  std::vector<size_t> front;
  bool any_before = false;  // a point at a smaller x exists,
  double best_before = 0;   // and this is the best y among them
  for (size_t g = 0; g < order.size();) {
    const double x = points[order[g]].first, group_best = points[order[g]].second;
    size_t end = g;
    for (; end < order.size() && points[order[end]].first == x; ++end)
      if (points[order[end]].second == group_best && (!any_before || group_best > best_before)) front.push_back(order[end]);
    best_before = any_before ? std::max(best_before, group_best) : group_best;
    any_before = true;
    g = end;
  }
  return front;
}

}  // namespace ctx::plots
