// The attention plugin interface. A backend computes, for each sequence of a batch, softmax-attention
// of its new query rows over that sequence's keys/values (which already include the new positions).
//
// Semantics every backend must reproduce (checked against `eager` by tests/plugins/attention):
//   query row i of a sequence sits at position p = kv.length - n_new + i;
//   query head h reads KV head h / (num_heads / num_kv_heads)                (GQA / MQA)
//   score(p, j) = scale * dot(q_h, k_j) for visible keys j, softmax over them, out = sum_j w_j v_j
//   visible: j <= p (causal) and, when window > 0, j > p - window           (Mistral sliding window)
// Backends may add their own masks/score mods through their parameters (flex).
// forward() is const and thread-safe: it parallelizes internally with OpenMP.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/attention/kv_view.h"
#include "core/base/error.h"
#include "core/cuda/flex_mask.h"
#include "core/cuda/score_mod.h"

namespace ctx {

struct AttentionParams {
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;  // 1/sqrt(head_dim), or Granite's attention_multiplier
  int64_t window = 0;  // 0: none
};

struct AttentionSequence {
  const float* q = nullptr;  // [n_new, num_heads * head_dim], RoPE applied
  int64_t n_new = 0;
  KvView kv;                 // kv.length >= n_new
  float* out = nullptr;      // [n_new, num_heads * head_dim]
  int64_t batch_index = 0;   // b in mask/score mods
};

// "Can this backend run this problem?" with the reason when not (CUTLASS can_implement).
struct Support {
  bool ok = true;
  std::string reason;
  static Support yes() { return {}; }
  static Support no(std::string why) { return {false, std::move(why)}; }
};

class AttentionBackend {
 public:
  virtual ~AttentionBackend() = default;

  // The cache layout this backend reads; the engine allocates caches accordingly.
  virtual KvLayout layout() const { return KvLayout::kContiguous; }
  virtual int64_t block_size() const { return 0; }  // paged layout only

  virtual Support supports(const AttentionParams& p, KvLayout layout) const = 0;
  virtual void forward(const AttentionParams& p, std::span<const AttentionSequence> batch) const = 0;

  // This backend's mask as the GPU engine's kernels take it (core/cuda/flex_mask.h), for backends
  // defined by a mask of their own (flex). Throws ctx::Unsupported, with the reason, when there is
  // none or this configuration has no GPU form.
  virtual cuda::FlexMask gpu_flex_mask() const {
    throw Unsupported("this attention backend has no mask of its own for the GPU kernels");
  }
  // This backend's score mod as the GPU kernels take it (core/cuda/score_mod.h); empty: none.
  virtual cuda::ScoreMod gpu_score_mod() const { return {}; }
};

}  // namespace ctx
