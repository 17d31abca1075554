// What the GPU engine's test programs (tests/gpu) share: whether this machine runs the GPU engine (the
// tests skip where it does not), the GPU KV policy of a kv plugin spec, and a CPU compressor wrapper
// that records the positions each layer keeps.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/kv/kv_compressor.h"
#include "core/kv/kv_quant.h"
#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "plugins/register_all.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda::gpu_test {

// Whether GpuEngine::create succeeds for `model` (false where it throws ctx::Unsupported: no CUDA device).
inline bool have_gpu(const Model& model) {
  try {
    GpuEngine::create(model, {});
    return true;
  } catch (const Unsupported&) {
    return false;
  }
}

// The same for the llama fixture (../shared/fixtures/hf/llama).
inline bool have_gpu() { return have_gpu(*load_model(test::shared_path("fixtures/hf/llama"))); }

// Bytes of one (slot, KV head)'s KIVI codes and fp16 (min, scale) params of K and V for `held` entries
// (kernels.h KiviKv).
inline int64_t kivi_code_bytes(const KvQuantConfig& q, int64_t hd, int64_t held) {
  return 2 * held * kv_quant_row_bytes(hd, q.bits) + 4 * (held / q.group * hd + held * ((hd + q.group - 1) / q.group));
}

// The GPU engine's policy of a kv plugin spec as the runner resolves it.
inline GpuKvPolicy policy_of(const std::string& spec) { return gpu_kv_policy(builtin_catalog().kv.resolve(spec)); }

// Prompt ids spread over the vocabulary: id i = (i * stride + offset) % vocab.
inline std::vector<int32_t> spread_ids(int64_t n, int64_t vocab, int64_t stride, int64_t offset) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * stride + offset) % vocab);
  return ids;
}

// The prompts most engine tests use: stride 37, one offset per seed.
inline std::vector<int32_t> token_ids(int64_t n, int64_t vocab, int64_t seed = 0) {
  return spread_ids(n, vocab, 37, seed * 101 + 11);
}

// The CPU engine's logits of every prompt position [ids.size(), vocab], the whole prompt in one
// forward with attention plugin `spec`: the reference the GPU engine's prompt logits are held to.
inline std::vector<float> cpu_prompt_logits(const Model& model, const std::string& spec, const std::vector<int32_t>& ids) {
  Transformer cpu(model, builtin_catalog().attention.create(spec));
  KvCache cache = cpu.new_cache(int64_t(ids.size()));
  SequenceStep step{&cache, ids, 0};
  return cpu.forward(std::span<const SequenceStep>(&step, 1));
}

// Greedy decoding through forward() one step at a time (no CUDA graph): the prompt, then `steps`
// argmax tokens (the last one is not fed back), as generate_greedy should produce them.
inline std::vector<int32_t> greedy_by_forward(GpuEngine& engine, const std::vector<int32_t>& prompt, int steps) {
  std::vector<int32_t> out;
  auto logits = engine.forward(prompt, false);
  for (int i = 0; i < steps; ++i) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    if (i + 1 < steps) logits = engine.forward(std::span<const int32_t>(&next, 1), false);
  }
  return out;
}

// One decode run of an engine, for comparing two settings of it bit for bit: from a reset, the prompt
// ids[0, prefix), then the logits of ids[prefix, end) fed one token at a time (forward, no graph); from
// a reset again, `steps` greedy tokens after ids[0, greedy_prompt) (generate_greedy: graph replays).
struct DecodeTrace {
  std::vector<float> logits;
  std::vector<int32_t> tokens;
};
inline DecodeTrace decode_trace(GpuEngine& engine, const std::vector<int32_t>& ids, size_t prefix, size_t greedy_prompt,
                                int steps) {
  DecodeTrace out;
  engine.reset();
  engine.forward(std::span<const int32_t>(ids.data(), prefix), false);
  for (size_t t = prefix; t < ids.size(); ++t) {
    const auto row = engine.forward(std::span<const int32_t>(&ids[t], 1), false);
    out.logits.insert(out.logits.end(), row.begin(), row.end());
  }
  engine.reset();
  out.tokens = engine.generate_greedy(std::span<const int32_t>(ids.data(), greedy_prompt), steps, {}, nullptr);
  return out;
}

// Records the CPU compressor's choices: kept positions per KV layer and head, composed over steps.
class RecordingCompressor final : public KvCompressor {
 public:
  explicit RecordingCompressor(std::unique_ptr<KvCompressor> inner) : inner_(std::move(inner)) {}
  Support supports(const ModelConfig& c) const override { return inner_->supports(c); }
  int64_t headroom() const override { return inner_->headroom(); }
  KvKeep after_step(const KvStep& s) const override {
    auto& heads = positions[s.layer];
    heads.resize(size_t(s.num_kv_heads));
    for (auto& pos : heads)
      for (int64_t p = s.position - s.n_new; p < s.position; ++p) pos.push_back(p);
    KvKeep keep = inner_->after_step(s);
    if (!keep.all)
      for (int64_t h = 0; h < s.num_kv_heads; ++h) {
        std::vector<int64_t> next;
        for (int64_t i = 0; i < keep.count; ++i) next.push_back(heads[size_t(h)][size_t(keep.indices[size_t(h * keep.count + i)])]);
        heads[size_t(h)] = next;
      }
    return keep;
  }
  mutable std::map<int64_t, std::vector<std::vector<int64_t>>> positions;  // [kv_layer][kv_head][entry]

 private:
  std::unique_ptr<KvCompressor> inner_;
};

}  // namespace ctx::cuda::gpu_test
