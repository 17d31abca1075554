// The `metric` plugin kind (DESIGN.md: Dataset and Metric). A metric scores one prediction against
// its references and returns named values; the names are those of the reference implementation's
// golden files (shared/golden/metrics/README.md), e.g. "rouge1_fmeasure", "exact_match", "meteor".
// Multi-reference cases add per-reference values under "KEY@refN" (N indexes `references`); keys
// without a suffix are the aggregate a benchmark reports.
// Metrics are registered in the Catalog by register_<name>(Catalog&) (eval/metrics/<name>.cc, called
// from plugins/register_all.cc). Instances are immutable: scores() is const and thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctx {

// (key, value) in output order.
using Scores = std::vector<std::pair<std::string, double>>;

class MetricPlugin {
 public:
  virtual ~MetricPlugin() = default;

  virtual std::string_view name() const = 0;
  // The aggregate keys scores() produces for a case with one reference, in output order.
  virtual std::vector<std::string> score_keys() const = 0;
  // Scores `prediction` (UTF-8) against `references` (UTF-8). `options` is the case's "options"
  // object (or null): each metric reads the keys it documents, overriding its plugin parameters, and
  // ignores the others. Throws ctx::Error for an option of the wrong type or a case the metric
  // cannot score (e.g. no references, where the reference implementation has no value either).
  virtual Scores scores(std::string_view prediction, const std::vector<std::string>& references,
                        const nlohmann::json& options) const = 0;
};

// The value of `key` in `scores`, or throws ctx::Error naming the key.
double score_of(const Scores& scores, std::string_view key);
// Appends every entry of `per_ref` to `out` as "KEY@refN".
void append_per_reference(Scores& out, const Scores& per_ref, size_t ref_index);

}  // namespace ctx
