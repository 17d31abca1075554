// Fidelity of a modified model (compressed KV cache, quantized weights, another attention backend)
// to the same model unmodified, from their next-token distributions at the same positions: the
// statistics of llama.cpp's `perplexity --kl-divergence`.
//   KL      KL(P_ref || P_test) = sum_v p_v (log p_v - log q_v) per position (nats), computed from
//           the logits with log-sum-exp in double; mean, median, 99th percentile and max.
//   top-1   fraction of positions where both argmaxes agree (lowest id on ties).
//   PPL     exp(mean negative log-likelihood of the actual next token) of each model, and their
//           ratio PPL(test) / PPL(ref) = exp(mean(nll_test - nll_ref)).
// Greedy agreement (tokens identical until the first divergence) is greedy_agreement().
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ctx {

struct FidelityStats {
  int64_t positions = 0;
  double kl_mean = 0, kl_median = 0, kl_p99 = 0, kl_max = 0;
  double top1_agreement = 0;  // in [0, 1]
  double ppl_ref = 0, ppl_test = 0, ppl_ratio = 0;
};

// Accumulates positions one at a time. Not thread-safe.
class FidelityAccumulator {
 public:
  // One position: both models' logits over the same vocabulary, and the token that actually
  // follows (its log-likelihood enters the perplexities). Throws ctx::Error for vocab < 1, a token
  // outside [0, vocab) or non-finite logits.
  void add(std::span<const float> ref_logits, std::span<const float> test_logits, int32_t next_token);
  // Statistics so far (all zero when no position was added).
  FidelityStats stats() const;

 private:
  std::vector<double> kl_;
  int64_t top1_same_ = 0;
  double nll_ref_ = 0, nll_test_ = 0;
};

// KL(P || Q) in nats of the softmax distributions of two logit vectors (same length).
double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits);

// Number of leading tokens on which a and b agree (up to the shorter length).
int64_t greedy_agreement(std::span<const int32_t> a, std::span<const int32_t> b);

}  // namespace ctx
