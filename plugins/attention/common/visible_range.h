// Which keys a query row sees under the engine's base mask (causal + optional sliding window), and
// where its position is. Shared by every attention backend so that they agree by construction.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/attention/attention_backend.h"

namespace ctx {

// Absolute position of query row i of a sequence with n_new new rows over kv_length keys.
inline int64_t query_position(const AttentionSequence& s, int64_t i) { return s.kv.length - s.n_new + i; }

// First visible key of a query at position `pos` (keys first..pos are visible).
inline int64_t first_visible_key(const AttentionParams& p, int64_t pos) {
  return p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
}

// Common capability checks: a positive shape and heads that group evenly.
inline Support check_shape(const AttentionParams& p) {
  if (p.num_heads <= 0 || p.num_kv_heads <= 0 || p.head_dim <= 0) return Support::no("empty attention shape");
  if (p.num_heads % p.num_kv_heads != 0) return Support::no("num_heads is not a multiple of num_kv_heads");
  return Support::yes();
}

}  // namespace ctx
