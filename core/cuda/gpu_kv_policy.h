// What the GPU engine's KV compression does (GpuEngineOptions::kv): the score-based policies of the CPU
// plugins (plugins/kv/*) that score from the keys or the positions alone, with the same budget
// (core/kv/kv_budget.h) and the same selection as core/kv/scored_compressor.h:
//   l2norm     score = -||k|| (keep=low) or ||k|| (keep=high), norms in double from the bf16 keys
//   streaming  score = FLT_MAX for the first n_sink entries, else float(entry index)
//   random     the `random` plugin's seeded hash of (seed, layer, head, entry, tokens seen)
// Per KV head the last min(target, protect_recent) entries survive plus the highest-scoring others
// up to the budget, ties to the earlier entry; every head keeps the same count.
// Compression runs after every prefill step (a forward of more than one token; the engine's prefill
// chunks are its steps) and, with every > 0, every `every` decode steps, as the CPU's
// ScoredCompressor does. The other kv plugins (snapkv, h2o, tova need the step's attention) are
// refused with ctx::Unsupported naming the reason.
// Plain C++ (no CUDA): the runner builds a policy from a plugin spec in every build.
#pragma once

#include <cstdint>

#include "core/kv/kv_budget.h"
#include "core/plugin/plugin_spec.h"

namespace ctx::cuda {

enum class GpuKvMethod { kNone, kL2Norm, kStreaming, kRandom };

struct GpuKvPolicy {
  GpuKvMethod method = GpuKvMethod::kNone;
  KvBudget budget;
  bool keep_low = true;  // l2norm
  int64_t n_sink = 4;    // streaming
  uint64_t seed = 0;     // random

  bool enabled() const { return method != GpuKvMethod::kNone; }
  // Entries the selection keeps at the end of a layer of `length` entries after a step that brings
  // the tokens seen to `position` (-1: the layer is left as it is). `layer` is the KV-layer index.
  int64_t target(int64_t layer, int64_t length, int64_t position) const;
};

// The policy of a resolved kv plugin spec (Catalog::kv.resolve). Throws ctx::Unsupported for plugins
// the GPU engine does not run.
GpuKvPolicy gpu_kv_policy(const PluginSpec& spec);

}  // namespace ctx::cuda
