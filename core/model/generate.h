// Greedy generation and continuation log-likelihoods on top of Transformer::forward.
// Both run many sequences as one ragged batch. Not thread-safe (they drive one Transformer).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/model/transformer.h"

namespace ctx {

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  // > 0: each prompt goes in in forwards of at most this many tokens (all prompts' chunks in one
  // forward per round), as the GPU engine's chunked prefill does: the KV plugins, which act after each
  // forward (KvCache::flush quantizes, prefill steps compress), then see the same chunks on both
  // engines. 0: one forward.
  int64_t prefill_chunk = 0;
  std::vector<int32_t> stop_ids;  // a generated stop id ends that sequence (and is included)
  // Called after each decode step with (sequence index, new token); may be empty.
  std::function<void(size_t, int32_t)> on_token;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids only
  bool stopped = false;         // ended on a stop id
  int64_t prompt_tokens = 0;
};

struct GenerateTimings {
  double prefill_seconds = 0;  // prompt forward pass + first token (= time to first token)
  double decode_seconds = 0;   // all later steps
  int64_t decode_steps = 0;    // batched steps after the first token
  // KV memory at its peak during the call, summed over sequences: bytes allocated for them
  // (capacity or blocks) and bytes holding valid entries. A finished sequence's cache is released
  // at once (paged: its blocks return to the pool for the others).
  int64_t kv_bytes_reserved = 0;
  int64_t kv_bytes_used = 0;
};

// Greedy (argmax, lowest id on ties as torch.argmax and run.c do) continuation of each prompt.
// Prompts must be non-empty.
std::vector<GenerateResult> generate_greedy(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                            const GenerateOptions& options, GenerateTimings* timings = nullptr);

// Index of the largest value (first on ties).
int32_t argmax(const float* values, int64_t n);

struct LoglikRequest {
  std::vector<int32_t> context;       // non-empty (e.g. starts with BOS)
  std::vector<int32_t> continuation;  // non-empty
};

struct LoglikResult {
  double logprob = 0;    // sum over continuation tokens of log p(token | preceding tokens)
  bool is_greedy = true;  // every continuation token was the argmax (lm-evaluation-harness semantics)
};

// The tokens a teacher-forced pass over request `r` (number `index`, for the error) feeds: context +
// continuation without its last token. Throws on an empty context or continuation.
std::vector<int32_t> loglik_input(const LoglikRequest& r, size_t index);

// The log-probability of `continuation` and whether it was greedy, from the logits rows [n, vocab]
// that predict its tokens (row i predicts continuation[i]). Throws on a token outside the vocabulary.
LoglikResult score_continuation(const float* rows, int64_t vocab, std::span<const int32_t> continuation);

// Scores each request teacher-forced in one pass over context + continuation (prefill_chunk > 0: in
// forwards of at most that many tokens, as GenerateOptions::prefill_chunk). Requests are batched up to
// `max_batch_tokens` tokens per forward pass.
std::vector<LoglikResult> loglikelihood(Transformer& model, const std::vector<LoglikRequest>& requests,
                                        int64_t max_batch_tokens = 4096, int64_t prefill_chunk = 0);

// model.forward(steps) in forwards of at most `chunk` tokens per sequence (0: one forward): round r
// feeds tokens [r * chunk, (r + 1) * chunk) of every sequence that has them. Returns what one forward
// would (per step the logits rows it asks for, in step order), though from chunked forwards.
std::vector<float> forward_in_chunks(Transformer& model, const std::vector<SequenceStep>& steps, int64_t chunk);

}  // namespace ctx
