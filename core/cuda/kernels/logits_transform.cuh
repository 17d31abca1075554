// The attention kernels' score point as a policy (FlashInfer's variant "logits transform";
// internal to core/cuda/kernels). A kernel takes a Logits type as a template parameter and a value
// of it as an argument, and calls it on every score it keeps, s = scale * q.k, before masking and
// softmax:
//   s = logits(s, head, q_pos, k_pos)
// PlainLogits is the identity and compiles to nothing (the kernels' default); ScoreModLogits
// applies a ScoreMod (core/cuda/score_mod.h: softcap, ALiBi). with_logits() picks the instantiation
// from a ScoreMod on the host, so that only launches with a score mod pay for it.
#pragma once

#include <cstdint>

#include "core/cuda/score_mod.h"

namespace ctx::cuda {

struct PlainLogits {
  static constexpr bool kActive = false;
  __device__ __forceinline__ float operator()(float s, int64_t, int64_t, int64_t) const { return s; }
};

struct ScoreModLogits {
  static constexpr bool kActive = true;
  ScoreMod mod;
  int64_t heads = 0;  // query heads (ALiBi's slopes depend on their count)
  __device__ __forceinline__ float operator()(float s, int64_t h, int64_t q, int64_t k) const {
    return mod.apply(s, h, heads, q, k);
  }
};

// fn(logits): PlainLogits{} when mod is empty, else ScoreModLogits{mod, heads}.
template <class Fn>
void with_logits(const ScoreMod& mod, int64_t heads, Fn&& fn) {
  if (mod.empty()) {
    fn(PlainLogits{});
  } else {
    fn(ScoreModLogits{mod, heads});
  }
}

}  // namespace ctx::cuda
