// The options every non-`none` KV compressor shares, and its budget arithmetic.
//   keep_ratio      fraction (0, 1] of the tokens seen to keep; 0 = unset
//   keep_tokens     absolute entries to keep per layer and head; 0 = unset
//                   (both unset: keep_ratio 0.5; both set: an error)
//   prune_after     compress only once the sequence has at least this many tokens
//   skip_layers     layers never compressed
//   protect_recent  the last this-many entries of a layer always survive
//   every           decode-time mode: re-compress to the budget every N decode steps; 0 = after
//                   prefill steps only
// Budget: target(position) = keep_tokens, or round-half-up(keep_ratio * position), at least 1;
// position = tokens seen including the current step. A layer holding <= target entries is kept.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/plugin/params.h"

namespace ctx {

struct KvBudget {
  double keep_ratio = 0.5;
  int64_t keep_tokens = 0;
  int64_t prune_after = 0;
  std::vector<int64_t> skip_layers;
  int64_t protect_recent = 0;
  int64_t every = 0;

  // The shared parameters, with this plugin's defaults for skip_layers and every.
  static ParamSchema schema(std::vector<int64_t> default_skip_layers, int64_t default_every);
  // Throws ctx::Error naming `where` when keep_ratio and keep_tokens are both set.
  static KvBudget from(const Params& p, std::string_view where);

  int64_t target(int64_t position) const;
  bool skips(int64_t layer) const;
};

}  // namespace ctx
