// The common frame of score-based KV compressors (all built-ins but `none`): it applies the shared
// options (core/kv/kv_budget.h) and keeps, per KV head, the protected recent entries plus the
// highest-scoring others up to the budget (ties: the earlier entry). Policies supply the scores.
//
// When it compresses (layers in skip_layers never; sequences shorter than prune_after never):
//   prefill step (n_new > 1): always;
//   decode step: when every > 0 and `every` decode steps passed since the layer's last compression.
#pragma once

#include <string_view>
#include <vector>

#include "core/kv/kv_budget.h"
#include "core/kv/kv_compressor.h"

namespace ctx {

class ScoredCompressor : public KvCompressor {
 public:
  explicit ScoredCompressor(KvBudget budget) : budget_(std::move(budget)) {}

  KvKeep after_step(const KvStep& step) const final;
  int64_t headroom() const override { return std::max<int64_t>(16, budget_.every); }
  const KvBudget& budget() const { return budget_; }

 protected:
  // Called on every step of a compressed layer before the decision (H2O accumulates attention).
  virtual void observe(const KvStep&) const {}
  // scores[h][j] for every entry j < kv.length of KV head h (sized by the caller): higher survives.
  virtual void score(const KvStep& step, std::vector<std::vector<float>>& scores) const = 0;
  // Recent entries that survive besides protect_recent (H2O's recent window), given the budget.
  virtual int64_t recent(int64_t /*target*/) const { return 0; }

 private:
  KvBudget budget_;
};

}  // namespace ctx
