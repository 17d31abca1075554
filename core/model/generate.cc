#include "core/model/generate.h"

#include <algorithm>
#include <cmath>

#include "core/base/error.h"
#include "core/instruments/clock.h"

namespace ctx {
int32_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (v[i] > v[best]) best = i;
  return int32_t(best);
}

std::vector<float> forward_in_chunks(Transformer& model, const std::vector<SequenceStep>& steps, int64_t chunk) {
  int64_t longest = 0;
  for (const SequenceStep& s : steps) longest = std::max(longest, int64_t(s.tokens.size()));
  if (chunk <= 0 || longest <= chunk) return model.forward(steps);
  const int64_t vocab = model.config().vocab_size;
  std::vector<std::vector<float>> rows(steps.size());  // per step, the rows one forward would return
  for (int64_t at = 0; at < longest; at += chunk) {
    std::vector<SequenceStep> round;
    std::vector<size_t> which;
    std::vector<bool> keep;  // whether the round's rows for that step are wanted (else its last row is dropped)
    for (size_t i = 0; i < steps.size(); ++i) {
      const SequenceStep& s = steps[i];
      const int64_t len = int64_t(s.tokens.size());
      if (at >= len) continue;
      const int64_t n = std::min(chunk, len - at);
      const bool last = at + n == len;
      // logits_from -1: the last token's row, wanted from the last chunk only; else rows from
      // logits_from on, those of this chunk (a chunk before them asks for its last row and drops it).
      int64_t from = -1;
      bool wanted = last;
      if (s.logits_from >= 0 && s.logits_from < at + n) from = std::max<int64_t>(0, s.logits_from - at), wanted = true;
      round.push_back({s.cache, s.tokens.subspan(size_t(at), size_t(n)), from});
      which.push_back(i);
      keep.push_back(wanted);
    }
    const std::vector<float> out = model.forward(round);
    int64_t row = 0;
    for (size_t k = 0; k < round.size(); ++k) {
      const int64_t n = int64_t(round[k].tokens.size());
      const int64_t count = round[k].logits_from < 0 ? 1 : n - round[k].logits_from;
      if (keep[k]) rows[which[k]].insert(rows[which[k]].end(), out.begin() + row * vocab, out.begin() + (row + count) * vocab);
      row += count;
    }
  }
  std::vector<float> all;
  for (const auto& r : rows) all.insert(all.end(), r.begin(), r.end());
  return all;
}

std::vector<GenerateResult> generate_greedy(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerateOptions& opt, GenerateTimings* timings) {
  const int64_t vocab = model.config().vocab_size;
  std::vector<GenerateResult> results(prompts.size());
  std::vector<KvCache> caches;
  caches.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) fail("generate: prompt ", i, " is empty (it needs at least one token, e.g. BOS)");
    caches.push_back(model.new_cache(int64_t(prompts[i].size()) + opt.max_new_tokens));
    results[i].prompt_tokens = int64_t(prompts[i].size());
  }
  if (opt.max_new_tokens <= 0 || prompts.empty()) return results;
  auto is_stop = [&](int32_t t) { return std::find(opt.stop_ids.begin(), opt.stop_ids.end(), t) != opt.stop_ids.end(); };

  double t0 = monotonic_seconds();
  std::vector<SequenceStep> steps;
  for (size_t i = 0; i < prompts.size(); ++i) steps.push_back({&caches[i], prompts[i], -1});
  std::vector<float> logits = forward_in_chunks(model, steps, opt.prefill_chunk);
  std::vector<int32_t> last(prompts.size());
  std::vector<size_t> active;
  for (size_t i = 0; i < prompts.size(); ++i) {
    last[i] = argmax(logits.data() + int64_t(i) * vocab, vocab);
    results[i].tokens.push_back(last[i]);
    if (opt.on_token) opt.on_token(i, last[i]);
    results[i].stopped = is_stop(last[i]);
    if (!results[i].stopped && opt.max_new_tokens > 1) active.push_back(i);
  }
  auto account = [&] {
    if (!timings) return;
    int64_t reserved = 0, used = 0;
    for (const auto& c : caches) reserved += c.bytes_reserved(), used += c.bytes_used();
    if (reserved > timings->kv_bytes_reserved) timings->kv_bytes_reserved = reserved, timings->kv_bytes_used = used;
  };
  auto finish = [&](size_t i) {
    account();
    caches[i].clear();
  };
  for (size_t i = 0; i < prompts.size(); ++i)
    if (results[i].stopped || opt.max_new_tokens <= 1) finish(i);
  if (timings) timings->prefill_seconds = monotonic_seconds() - t0;

  t0 = monotonic_seconds();
  while (!active.empty()) {
    steps.clear();
    for (size_t i : active) steps.push_back({&caches[i], std::span<const int32_t>(&last[i], 1), -1});
    logits = model.forward(steps);
    if (timings) ++timings->decode_steps;
    std::vector<size_t> still;
    for (size_t a = 0; a < active.size(); ++a) {
      const size_t i = active[a];
      last[i] = argmax(logits.data() + int64_t(a) * vocab, vocab);
      results[i].tokens.push_back(last[i]);
      if (opt.on_token) opt.on_token(i, last[i]);
      results[i].stopped = is_stop(last[i]);
      if (!results[i].stopped && int64_t(results[i].tokens.size()) < opt.max_new_tokens) {
        still.push_back(i);
      } else {
        finish(i);
      }
    }
    active.swap(still);
  }
  if (timings) timings->decode_seconds = monotonic_seconds() - t0;
  return results;
}

std::vector<int32_t> loglik_input(const LoglikRequest& r, size_t index) {
  if (r.context.empty() || r.continuation.empty())
    fail("loglikelihood: request ", index, " has an empty context or continuation");
  std::vector<int32_t> s = r.context;
  s.insert(s.end(), r.continuation.begin(), r.continuation.end() - 1);  // the last token is never input
  return s;
}

LoglikResult score_continuation(const float* rows, int64_t vocab, std::span<const int32_t> continuation) {
  LoglikResult res;
  for (size_t t = 0; t < continuation.size(); ++t) {
    const int32_t target = continuation[t];
    if (target < 0 || target >= vocab) fail("loglikelihood: continuation token ", target, " is outside the vocabulary");
    const float* z = rows + int64_t(t) * vocab;
    const float mx = *std::max_element(z, z + vocab);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(z[i]) - mx);
    res.logprob += double(z[target]) - mx - std::log(sum);
    res.is_greedy = res.is_greedy && argmax(z, vocab) == target;
  }
  return res;
}

std::vector<LoglikResult> loglikelihood(Transformer& model, const std::vector<LoglikRequest>& requests,
                                        int64_t max_batch_tokens, int64_t prefill_chunk) {
  const int64_t vocab = model.config().vocab_size;
  std::vector<LoglikResult> results(requests.size());
  size_t next = 0;
  while (next < requests.size()) {
    // Gather a batch of whole requests (at least one) within the token budget.
    std::vector<size_t> batch;
    std::vector<std::vector<int32_t>> seqs;
    int64_t tokens = 0;
    while (next < requests.size()) {
      std::vector<int32_t> s = loglik_input(requests[next], next);
      const int64_t len = int64_t(s.size());
      if (!batch.empty() && tokens + len > max_batch_tokens) break;
      batch.push_back(next++);
      seqs.push_back(std::move(s));
      tokens += len;
    }
    std::vector<KvCache> caches;
    caches.reserve(batch.size());
    for (const auto& s : seqs) caches.push_back(model.new_cache(int64_t(s.size())));
    std::vector<SequenceStep> steps;
    for (size_t i = 0; i < batch.size(); ++i)
      steps.push_back({&caches[i], seqs[i], int64_t(requests[batch[i]].context.size()) - 1});
    const std::vector<float> logits = forward_in_chunks(model, steps, prefill_chunk);
    int64_t row = 0;
    for (size_t b : batch) {
      const auto& cont = requests[b].continuation;
      results[b] = score_continuation(logits.data() + row * vocab, vocab, cont);
      row += int64_t(cont.size());
    }
  }
  return results;
}

}  // namespace ctx
