#include "eval/model_fidelity.h"

#include "core/base/error.h"
#include "core/model/generate.h"

namespace ctx {
namespace {

// Teacher-forced logits of one model, produced step by step: first the prefill block, then one row
// per decode step. `on_rows(first_position, logits, rows)` receives each step's rows.
template <class OnRows>
KvCache run_schedule(Transformer& tf, std::span<const int32_t> tokens, int64_t context, OnRows&& on_rows) {
  KvCache cache = tf.new_cache();
  SequenceStep step{&cache, tokens.subspan(0, size_t(context)), 0};
  std::vector<float> logits = tf.forward({&step, 1});
  on_rows(int64_t(0), logits.data(), context);
  for (int64_t t = context; t + 1 < int64_t(tokens.size()); ++t) {
    SequenceStep one{&cache, tokens.subspan(size_t(t), 1), 0};
    logits = tf.forward({&one, 1});
    on_rows(t, logits.data(), int64_t(1));
  }
  return cache;
}

}  // namespace

ModelFidelityReport compare_models(Transformer& reference, Transformer& test, std::span<const int32_t> tokens,
                                   const ModelFidelityOptions& options) {
  const int64_t N = int64_t(tokens.size()), V = reference.config().vocab_size;
  if (test.config().vocab_size != V)
    fail("fidelity: vocabularies differ (reference ", V, ", test ", test.config().vocab_size, ")");
  if (N < 2) fail("fidelity: need at least 2 tokens to score, got ", N);
  const int64_t context = options.context == 0 ? N - 1 : options.context;
  if (context < 1 || context > N - 1) fail("fidelity: context ", options.context, " outside [1, ", N - 1, "] for ", N, " tokens");

  ModelFidelityReport report;
  report.context = context;
  // The reference's rows are kept (N-1 rows of vocab floats); the test's are compared as they come.
  std::vector<float> ref_logits(size_t((N - 1) * V));
  KvCache ref_cache = run_schedule(reference, tokens, context, [&](int64_t pos, const float* rows, int64_t n) {
    for (int64_t i = 0; i < n && pos + i < N - 1; ++i)
      std::copy_n(rows + i * V, V, ref_logits.begin() + (pos + i) * V);
  });
  report.ref_kv_reserved = ref_cache.bytes_reserved();
  report.ref_kv_used = ref_cache.bytes_used();
  ref_cache.clear();

  FidelityAccumulator acc;
  KvCache test_cache = run_schedule(test, tokens, context, [&](int64_t pos, const float* rows, int64_t n) {
    for (int64_t i = 0; i < n && pos + i < N - 1; ++i)
      acc.add({ref_logits.data() + (pos + i) * V, size_t(V)}, {rows + i * V, size_t(V)}, tokens[size_t(pos + i + 1)]);
  });
  report.test_kv_reserved = test_cache.bytes_reserved();
  report.test_kv_used = test_cache.bytes_used();
  test_cache.clear();
  report.stats = acc.stats();

  if (options.greedy_tokens > 0) {
    GenerateOptions g;
    g.max_new_tokens = options.greedy_tokens;
    const std::vector<std::vector<int32_t>> prompt{std::vector<int32_t>(tokens.begin(), tokens.begin() + context)};
    report.greedy_ref = generate_greedy(reference, prompt, g)[0].tokens;
    report.greedy_test = generate_greedy(test, prompt, g)[0].tokens;
    report.greedy_agreement = greedy_agreement(report.greedy_ref, report.greedy_test);
  }
  return report;
}

}  // namespace ctx
