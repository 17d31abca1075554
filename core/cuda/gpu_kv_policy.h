// What the GPU engine's KV compression does (GpuEngineOptions::kv): the score-based policies of the CPU
// plugins (plugins/kv/*), with the same budget (core/kv/kv_budget.h) and the same selection as
// core/kv/scored_compressor.h:
//   l2norm     score = -||k|| (keep=low) or ||k|| (keep=high), norms in double from the bf16 keys
//   streaming  score = FLT_MAX for the first n_sink entries, else float(entry index)
//   random     the `random` plugin's seeded hash of (seed, layer, head, entry, tokens seen)
//   snapkv     the softmax attention of the step's last min(window_size, n) queries, summed over them
//              and averaged over the query heads of each KV head, pooled (avg, zero-padded, or max over
//              kernel_size entries) over the entries before the window; the window's entries FLT_MAX
//   h2o        the attention every query of every step gave each entry (averaged over the query heads
//              of its KV head), accumulated in a per-layer device buffer that moves with the entries;
//              a recent window (recent, or round(recent_ratio * budget)) survives besides the top
//   tova       the attention of the step's last query per KV head, averaged over the KV heads (every
//              head keeps the same entries) unless per_head
// Attention scores come from the step's post-RoPE queries and the cached keys (gpu_kv_scorer.h).
// Per KV head the last protect(target) entries survive plus the highest-scoring others up to the
// budget, ties to the earlier entry; every head keeps the same count.
// Compression runs after every prefill step (a forward of more than one token; the engine's prefill
// chunks are its steps) and, with every > 0, every `every` decode steps, as the CPU's
// ScoredCompressor does. Other kv plugins are refused with ctx::Unsupported naming the reason.
// Plain C++ (no CUDA): the runner builds a policy from a plugin spec in every build.
#pragma once

#include <cstdint>

#include "core/kv/kv_budget.h"
#include "core/plugin/plugin_spec.h"

namespace ctx::cuda {

enum class GpuKvMethod { kNone, kL2Norm, kStreaming, kRandom, kSnapKv, kH2o, kTova };

struct GpuKvPolicy {
  GpuKvMethod method = GpuKvMethod::kNone;
  KvBudget budget;
  bool keep_low = true;  // l2norm
  int64_t n_sink = 4;    // streaming
  uint64_t seed = 0;     // random
  int64_t window = 64, kernel = 5;  // snapkv: window_size, kernel_size (odd)
  bool max_pool = false;            // snapkv: pooling=max
  double recent_ratio = 0.5;        // h2o
  int64_t recent = 0;               // h2o (> 0: overrides recent_ratio)
  bool per_head = false;            // tova

  bool enabled() const { return method != GpuKvMethod::kNone; }
  // Entries the selection keeps at the end of a layer of `length` entries after a step that brings
  // the tokens seen to `position` (-1: the layer is left as it is). `layer` is the KV-layer index.
  int64_t target(int64_t layer, int64_t length, int64_t position) const;
  // The last entries that survive besides the top-scored ones when keeping `target`
  // (scored_compressor.cc: min(target, max(protect_recent, the policy's recent window))).
  int64_t protect(int64_t target) const;

  // Attention-scored policies (snapkv, h2o, tova): the rows [begin, end) of a step of n query rows
  // whose attention the policy reads (empty: none this step; n == 1 is a decode step).
  struct Rows {
    int64_t begin = 0, end = 0;
    bool empty() const { return end <= begin; }
  };
  bool needs_attention() const;
  Rows attention_rows(int64_t n) const;
  bool accumulates() const { return method == GpuKvMethod::kH2o; }  // scores add up over steps
};

// The policy of a resolved kv plugin spec (Catalog::kv.resolve). Throws ctx::Unsupported for plugins
// the GPU engine does not run.
GpuKvPolicy gpu_kv_policy(const PluginSpec& spec);

}  // namespace ctx::cuda
