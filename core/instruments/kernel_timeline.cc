#include "core/instruments/kernel_timeline.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "core/base/error.h"

namespace ctx {

namespace {

bool by_start(const KernelRecord& a, const KernelRecord& b) {
  return std::tie(a.start_ns, a.end_ns) < std::tie(b.start_ns, b.end_ns);
}

void erase_all(std::string& s, const std::string& what) {
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at)) s.erase(at, what.size());
}

}  // namespace

std::vector<std::vector<KernelRecord>> graph_launches(const std::vector<KernelRecord>& records) {
  std::vector<std::vector<KernelRecord>> out;
  const bool correlated = std::any_of(records.begin(), records.end(), [](const KernelRecord& r) { return r.correlation != 0; });
  if (correlated) {
    std::map<uint32_t, std::vector<KernelRecord>> by_call;
    for (const KernelRecord& r : records) by_call[r.correlation].push_back(r);
    for (auto& [id, rs] : by_call) {
      const bool graph = rs.size() > 1 || rs.front().graph_id != 0;
      if (!graph) continue;
      std::sort(rs.begin(), rs.end(), by_start);
      out.push_back(std::move(rs));
    }
  } else {
    std::vector<KernelRecord> graph;
    for (const KernelRecord& r : records)
      if (r.graph_id != 0) graph.push_back(r);
    std::sort(graph.begin(), graph.end(), by_start);
    std::set<std::pair<uint32_t, uint64_t>> seen;  // (graph, node) of the launch being gathered
    for (const KernelRecord& r : graph) {
      if (out.empty() || !seen.insert({r.graph_id, r.graph_node}).second) {
        out.emplace_back();
        seen = {{r.graph_id, r.graph_node}};
      }
      out.back().push_back(r);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return by_start(a.front(), b.front()); });
  return out;
}

StepTimeline summarize_steps(const std::vector<std::vector<KernelRecord>>& steps) {
  if (steps.empty()) fail("kernel timeline: no graph launch was recorded");
  StepTimeline t;
  t.steps = int64_t(steps.size());
  // Step 0's kernels, (short name, grid, block) each, and the row of t.kernels each adds to.
  using Key = std::tuple<std::string, int64_t, int64_t>;
  const auto key_of = [](const KernelRecord& r) { return Key{short_kernel_name(r.name), r.grid, r.block}; };
  std::vector<Key> keys;
  std::vector<size_t> rows;
  std::map<Key, size_t> index;
  for (const KernelRecord& r : steps[0]) {
    keys.push_back(key_of(r));
    auto it = index.find(keys.back());
    if (it == index.end()) {
      it = index.emplace(keys.back(), t.kernels.size()).first;
      t.kernels.push_back(TimelineKernel{std::get<0>(keys.back()), r.grid, r.block, r.registers});
    }
    rows.push_back(it->second);
  }
  std::vector<int64_t> gaps(t.kernels.size(), 0);  // launches with a gap, per row
  for (size_t s = 0; s < steps.size(); ++s) {
    const std::vector<KernelRecord>& step = steps[s];
    if (step.size() != keys.size()) fail("kernel timeline: step ", s, " launched ", step.size(), " kernels, step 0 ", keys.size());
    uint64_t reached = step.front().start_ns;  // the latest end so far
    for (size_t k = 0; k < step.size(); ++k) {
      const KernelRecord& r = step[k];
      if (s > 0) {
        const Key key = key_of(r);
        if (key != keys[k])
          fail("kernel timeline: kernel ", k, " of step ", s, " is ", std::get<0>(key), ", not ", std::get<0>(keys[k]),
               " (the steps differ)");
      }
      TimelineKernel& row = t.kernels[rows[k]];
      row.launches += 1;
      row.duration_us += double(r.end_ns - r.start_ns) * 1e-3;
      row.increment_us += double(r.end_ns > reached ? r.end_ns - reached : 0) * 1e-3;
      if (k > 0) {
        row.gap_us += (double(r.start_ns) - double(step[k - 1].end_ns)) * 1e-3;
        ++gaps[rows[k]];
      }
      reached = std::max(reached, r.end_ns);
    }
    t.span_us += double(reached - step.front().start_ns) * 1e-3;  // the last end need not be the last kernel's
  }
  const double n = double(t.steps);
  t.span_us /= n;
  for (size_t i = 0; i < t.kernels.size(); ++i) {
    TimelineKernel& row = t.kernels[i];
    row.launches /= n, row.duration_us /= n, row.increment_us /= n;
    row.gap_us = gaps[i] > 0 ? row.gap_us / double(gaps[i]) : 0;
  }
  return t;
}

std::string short_kernel_name(const std::string& demangled) {
  std::string s = demangled;
  if (s.rfind("void ", 0) == 0) s.erase(0, 5);
  // The argument list: the last top-level "(...)" (template arguments may hold parentheses, e.g.
  // "(anonymous namespace)", which are erased first).
  erase_all(s, "(anonymous namespace)::");
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (size_t i = s.size(); i-- > 0;) {
      depth += s[i] == ')' ? 1 : s[i] == '(' ? -1 : 0;
      if (depth == 0) {
        s.erase(i);
        break;
      }
    }
  }
  for (const char* ns : {"ctx::cuda::quant_device::", "ctx::cuda::qgemv::", "ctx::cuda::", "ctx::"}) erase_all(s, ns);
  return s;
}

}  // namespace ctx
