#include "eval/metric.h"

#include "core/base/error.h"

namespace ctx {

double score_of(const Scores& scores, std::string_view key) {
  for (const auto& [k, v] : scores)
    if (k == key) return v;
  fail("no score '", key, "'");
}

void append_per_reference(Scores& out, const Scores& per_ref, size_t ref_index) {
  for (const auto& [k, v] : per_ref) out.emplace_back(str_cat(k, "@ref", ref_index), v);
}

}  // namespace ctx
