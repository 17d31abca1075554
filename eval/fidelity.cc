#include "eval/fidelity.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"

namespace ctx {
namespace {

// log softmax(x)_v = x_v - logsumexp(x), in double.
std::vector<double> log_softmax(std::span<const float> x) {
  double mx = -INFINITY;
  for (float v : x) {
    if (!std::isfinite(v)) fail("fidelity: non-finite logit ", v);
    mx = std::max(mx, double(v));
  }
  double sum = 0;
  for (float v : x) sum += std::exp(double(v) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = double(x[i]) - lse;
  return out;
}

double kl_from_log_probs(const std::vector<double>& lp, const std::vector<double>& lq) {
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(0.0, kl);  // rounding can leave -1e-17 for identical inputs
}

size_t argmax_index(std::span<const float> x) { return size_t(std::max_element(x.begin(), x.end()) - x.begin()); }

double quantile(std::vector<double> sorted, double q) {  // sorted ascending, linear interpolation
  if (sorted.empty()) return 0;
  const double at = q * double(sorted.size() - 1);
  const size_t lo = size_t(std::floor(at)), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - double(lo));
}

void check_pair(std::span<const float> a, std::span<const float> b) {
  if (a.empty()) fail("fidelity: empty logit vector");
  if (a.size() != b.size()) fail("fidelity: logit vectors of different lengths (", a.size(), " vs ", b.size(), ")");
}

}  // namespace

double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits) {
  check_pair(p_logits, q_logits);
  return kl_from_log_probs(log_softmax(p_logits), log_softmax(q_logits));
}

void FidelityAccumulator::add(std::span<const float> ref, std::span<const float> test, int32_t next_token) {
  check_pair(ref, test);
  if (next_token < 0 || size_t(next_token) >= ref.size())
    fail("fidelity: next token ", next_token, " outside the vocabulary [0, ", ref.size(), ")");
  const auto lp = log_softmax(ref), lq = log_softmax(test);
  kl_.push_back(kl_from_log_probs(lp, lq));
  top1_same_ += argmax_index(ref) == argmax_index(test);
  nll_ref_ -= lp[size_t(next_token)];
  nll_test_ -= lq[size_t(next_token)];
}

FidelityStats FidelityAccumulator::stats() const {
  FidelityStats s;
  s.positions = int64_t(kl_.size());
  if (kl_.empty()) return s;
  std::vector<double> sorted = kl_;
  std::sort(sorted.begin(), sorted.end());
  double sum = 0;
  for (double v : kl_) sum += v;
  const double n = double(kl_.size());
  s.kl_mean = sum / n;
  s.kl_median = quantile(sorted, 0.5);
  s.kl_p99 = quantile(sorted, 0.99);
  s.kl_max = sorted.back();
  s.top1_agreement = double(top1_same_) / n;
  s.ppl_ref = std::exp(nll_ref_ / n);
  s.ppl_test = std::exp(nll_test_ / n);
  s.ppl_ratio = std::exp((nll_test_ - nll_ref_) / n);
  return s;
}

int64_t greedy_agreement(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return int64_t(i);
}

}  // namespace ctx
