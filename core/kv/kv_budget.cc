#include "core/kv/kv_budget.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"

namespace ctx {

ParamSchema KvBudget::schema(std::vector<int64_t> default_skip_layers, int64_t default_every) {
  return {
      ParamSpec::Float("keep_ratio", 0.0, 0.0, 1.0,
                       "fraction of the tokens seen to keep per layer and head (0 = unset; 0.5 when keep_tokens is unset too)"),
      ParamSpec::Int("keep_tokens", 0, 0, std::nullopt, "entries to keep per layer and head (0 = unset; excludes keep_ratio)"),
      ParamSpec::Int("prune_after", 0, 0, std::nullopt, "compress only sequences of at least this many tokens"),
      ParamSpec::IntList("skip_layers", std::move(default_skip_layers), 0, std::nullopt, "layers never compressed"),
      ParamSpec::Int("protect_recent", 0, 0, std::nullopt, "the last this-many entries always survive"),
      ParamSpec::Int("every", default_every, 0, std::nullopt,
                     "re-compress to the budget every N decode steps (0 = after prefill only)"),
  };
}

KvBudget KvBudget::from(const Params& p, std::string_view where) {
  KvBudget b;
  b.keep_ratio = p.get_float("keep_ratio");
  b.keep_tokens = p.get_int("keep_tokens");
  if (b.keep_ratio > 0 && b.keep_tokens > 0)
    fail(where, ": keep_ratio=", b.keep_ratio, " and keep_tokens=", b.keep_tokens, " are both set; give one budget");
  if (b.keep_ratio == 0 && b.keep_tokens == 0) b.keep_ratio = 0.5;
  b.prune_after = p.get_int("prune_after");
  b.skip_layers = p.get_int_list("skip_layers");
  b.protect_recent = p.get_int("protect_recent");
  b.every = p.get_int("every");
  return b;
}

int64_t KvBudget::target(int64_t position) const {
  if (keep_tokens > 0) return keep_tokens;
  return std::max<int64_t>(1, int64_t(std::floor(keep_ratio * double(position) + 0.5)));
}

bool KvBudget::skips(int64_t layer) const {
  return std::find(skip_layers.begin(), skip_layers.end(), layer) != skip_layers.end();
}

}  // namespace ctx
