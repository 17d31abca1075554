// Runs a reference and a test Transformer over the same token sequence and compares them
// (fidelity.h). Both see exactly the same schedule, so the test side's modifications (KV compression
// after prefill and during decode, quantized weights, another attention backend) act as they would
// in generation:
//   tokens[0, context) are prefilled in one forward step (logits of every position kept), then
//   tokens[context, N-1) are fed one decode step at a time (teacher forcing).
// Every position 0..N-2 is scored against the token that follows it. Then, if greedy_tokens > 0,
// both generate greedily from tokens[0, context) and the agreement prefix is counted.
// Memory: the reference's logits ((N-1) x vocab floats) are held while the test side runs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/model/transformer.h"
#include "eval/fidelity.h"

namespace ctx {

struct ModelFidelityOptions {
  int64_t context = 0;        // tokens prefilled in one step; 0 = all but the last token
  int64_t greedy_tokens = 0;  // greedy continuation length compared after scoring (0 = none)
};

struct ModelFidelityReport {
  FidelityStats stats;
  int64_t context = 0;
  std::vector<int32_t> greedy_ref, greedy_test;
  int64_t greedy_agreement = 0;  // leading tokens equal
  // KV bytes of each side's cache at the end of the scored sequence (held / holding valid entries).
  int64_t ref_kv_reserved = 0, ref_kv_used = 0, test_kv_reserved = 0, test_kv_used = 0;
};

// Throws ctx::Error when the models' vocabularies differ, tokens has fewer than 2 entries, or
// context is outside [1, N-1].
ModelFidelityReport compare_models(Transformer& reference, Transformer& test, std::span<const int32_t> tokens,
                                   const ModelFidelityOptions& options);

}  // namespace ctx
