// The KV-compression plugin interface (kind "kv"). A compressor decides which KV entries of a
// sequence survive, per layer and per KV head; the cache then compacts them (KvCache::compact), so
// memory is really freed, not masked.
//
// Contract:
//   - The Transformer calls after_step() for every layer of every sequence of a forward step, right
//     after that layer's attention has run over the full entries (the step's K/V are written and
//     counted in kv.length; the new rows are the last n_new entries). A step with n_new > 1 is a
//     prefill (chunk), n_new == 1 a decode step.
//   - It returns, per KV head, the increasing indices of the entries to keep, the same count for
//     every head (each head chooses its own entries), or "keep all". Kept entries stay in order, so
//     causal attention over stored indices remains right; RoPE positions come from
//     KvCache::position(), not from stored indices.
//   - Per-sequence data a policy needs across steps lives in the cache (KvLayerState: scores per
//     (head, entry), compacted with K/V), never in the compressor: after_step() is const and may be
//     called for many sequences. Policies that need attention compute it themselves from the step's
//     queries (core/kv/attention_probs.h); the attention backends are untouched.
//   - Models whose attention uses positions beyond causality (sliding windows) are refused by
//     supports(): windows over stored indices would be wrong once entries are dropped.
#pragma once

#include <cstdint>
#include <vector>

#include "core/attention/attention_backend.h"
#include "core/model/kv_cache.h"
#include "core/model/model_config.h"

namespace ctx {

struct KvStep {
  int64_t layer = 0;  // KV-layer index: attention layers numbered in order (ModelConfig::kv_layer())
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;             // the model's softmax scale
  const float* q = nullptr;       // [n_new, num_heads * head_dim], post-RoPE queries of the new rows
  int64_t n_new = 0;
  int64_t position = 0;           // tokens seen, including this step's
  KvView kv;                      // the layer's entries, the new rows included (KIVI: the quantized
                                  // prefix dequantized, a transient copy)
  KvLayerState* state = nullptr;  // this sequence's state for this layer
  bool prefill() const { return n_new > 1; }
};

struct KvKeep {
  bool all = true;
  int64_t count = 0;
  std::vector<int64_t> indices;  // [kv_head][count], increasing per head
};

class KvCompressor {
 public:
  virtual ~KvCompressor() = default;
  // Default: every model without sliding-window layers.
  virtual Support supports(const ModelConfig& config) const;
  virtual KvKeep after_step(const KvStep& step) const = 0;
  // Entries a compacted contiguous layer keeps free for the next decode steps.
  virtual int64_t headroom() const { return 16; }
  // True for a compressor that never drops an entry (`none`).
  virtual bool keeps_all() const { return false; }
};

// Runs `compressor` on KV layer `layer` of `cache` after a step of n_new rows with queries q and compacts
// the cache when it asks to. Returns whether entries were dropped (then call cache.trim() once the
// step is done, so a paged cache returns its free blocks). `position` is the tokens seen including
// the step; -1 means mid-step (the Transformer's case): cache.position() + n_new.
bool compress_layer(const KvCompressor& compressor, const ModelConfig& config, int64_t layer, const float* q,
                    int64_t n_new, KvCache& cache, int64_t position = -1);

}  // namespace ctx
