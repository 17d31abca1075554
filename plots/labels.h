// Labels of runs' plugin combinations: plot.h's combination_label, and the compact form the figures
// print beside points, in legends and under bars.
#pragma once

#include <string>
#include <vector>

#include "experiments/store/run_store.h"

namespace ctx::plots {

// The param keys that make up a plugin combination, in label order.
inline constexpr const char* kCombinationKeys[] = {"attention", "kv", "kv_quant", "quant"};

// One label per run, as combination_label, but a plugin parameter that has the same value in every
// run using that plugin is left out: the stored canonical specs list every parameter, defaults
// included, and only the varying ones tell the points apart ("l2norm(keep_ratio=0.25)" instead of
// "l2norm(keep_ratio=0.25,prune_after=512,skip_layers=[])").
std::vector<std::string> compact_combination_labels(const std::vector<const store::RunSummary*>& runs);

}  // namespace ctx::plots
