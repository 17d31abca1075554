// A FlexAttention score mod for the GPU kernels: the `flex` plugin's named score mods
// (plugins/attention/flex/flex_attention.h) applied one after another, as plain data small enough to
// pass by value to a kernel:
//   softcap   cap * tanh(s / cap)             (Gemma 2)
//   alibi     s + slope_h * (k - q)           (slope_h of alibi_slope(h, heads): Press et al. / HF)
// s is the scaled score scale * q.k; as on the CPU, the mod runs before masking and softmax, and the
// kernels evaluate it only on the scores of visible keys (a masked score is -inf whatever the mod
// made of it). h is the query head, q and k absolute positions. apply() runs on the host and the
// device (core/cuda/kernels/logits_transform.cuh is the kernels' policy around it).
#pragma once

#include <math.h>

#include <cstdint>

#include "core/cuda/flex_mask.h"  // CTX_HOST_DEVICE

namespace ctx::cuda {

struct ScoreMod {
  enum Op : int32_t { kSoftcap, kAlibi };
  static constexpr int kMaxOps = 2;

  int32_t count = 0;  // ops applied in order; 0: none
  int32_t ops[kMaxOps] = {};
  float softcap = 0.f;  // kSoftcap: the cap (> 0)

  bool empty() const { return count == 0; }

  // ALiBi slope of query head h of `heads` (flex::alibi_slopes): for a power of two n, 2^(-8 (h + 1)
  // / n); otherwise the slopes of the closest lower power of two c, then every other slope of 2c,
  // 2^(-4 (2i + 1) / c). The exponents are exact in float.
  CTX_HOST_DEVICE static float alibi_slope(int64_t h, int64_t heads) {
    int64_t closest = 1;
    while (closest * 2 <= heads) closest *= 2;
    const float c = float(closest);
    return h < closest ? exp2f(-8.f * float(h + 1) / c) : exp2f(-4.f * float(2 * (h - closest) + 1) / c);
  }

  CTX_HOST_DEVICE float apply(float s, int64_t h, int64_t heads, int64_t q, int64_t k) const {
    for (int i = 0; i < count; ++i)
      s = ops[i] == kSoftcap ? softcap * tanhf(s / softcap) : s + alibi_slope(h, heads) * float(k - q);
    return s;
  }
};

}  // namespace ctx::cuda
