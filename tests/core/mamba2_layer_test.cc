// The Mamba-2 mixer on the granite_hybrid fixture's weights: the chunked SSD scan against the
// sequential recurrence (outputs and carried states), chunked prefill through the recurrent state
// against one run, and the hybrid cache: K/V for attention layers only, recurrent state counted,
// prefill then decode equal to the teacher-forced logits and to transformers' reference.
#include "core/model/mamba2_layer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/model/model_loader.h"
#include "core/model/transformer.h"
#include "tests/support/attention.h"
#include "tests/support/model_check.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

std::string fixture_dir() { return test::shared_path("fixtures/hf/granite_hybrid"); }

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

double max_abs(const std::vector<float>& a) {
  double m = 0;
  for (float v : a) m = std::max(m, double(std::fabs(v)));
  return m;
}

class Mamba2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(fixture_dir());
    ASSERT_EQ(model_->config.layer_kind(0), LayerKind::kMamba2);
    std::mt19937 rng(7);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    x_.resize(size_t(kRows * model_->config.hidden_size));
    for (float& v : x_) v = dist(rng);
  }

  struct State {
    std::vector<float> conv, ssm;
  };
  State fresh_state() const {
    const Mamba2Config& m = model_->config.mamba;
    return {std::vector<float>(size_t(m.conv_dim() * (m.conv_kernel - 1))),
            std::vector<float>(size_t(m.num_heads * m.head_dim * m.state_size))};
  }

  // Runs rows [0, kRows) as two sequences (rows [0, kSplit) and [kSplit, kRows)), each fed in the
  // given pieces (lengths summing to its rows), every piece a separate forward() continuing the
  // state. Returns the outputs of all rows; the final states go to `states`.
  std::vector<float> run(Mamba2Mixer& mixer, const std::vector<std::vector<int64_t>>& pieces, std::vector<State>& states,
                         int64_t layer = 0) {
    const int64_t d = model_->config.hidden_size;
    const auto& w = model_->weights.layers[size_t(layer)].mamba;
    std::vector<float> out(x_.size());
    states = {fresh_state(), fresh_state()};
    const int64_t begin[2] = {0, kSplit};
    for (int s = 0; s < 2; ++s) {
      int64_t r = begin[s];
      for (int64_t len : pieces[size_t(s)]) {
        Mamba2Sequence seq{0, len, states[size_t(s)].conv.data(), states[size_t(s)].ssm.data()};
        mixer.forward(w, x_.data() + r * d, len, {&seq, 1}, out.data() + r * d);
        r += len;
      }
    }
    return out;
  }

  static constexpr int64_t kRows = 37, kSplit = 20;
  std::unique_ptr<Model> model_;
  std::vector<float> x_;
};

TEST_F(Mamba2Test, ChunkedScanEqualsSequentialScan) {
  const ModelConfig& c = model_->config;
  std::vector<State> seq_states, chunk_states;
  Mamba2Mixer sequential(c.mamba, float(c.rms_norm_eps), Mamba2Scan::kSequential);
  const auto ref = run(sequential, {{kSplit}, {kRows - kSplit}}, seq_states);
  ASSERT_GT(max_abs(ref), 0.0);
  for (int64_t chunk : {1, 3, 8, 17, 256}) {
    Mamba2Config m = c.mamba;
    m.chunk_size = chunk;
    Mamba2Mixer chunked(m, float(c.rms_norm_eps), Mamba2Scan::kChunked);
    const auto out = run(chunked, {{kSplit}, {kRows - kSplit}}, chunk_states);
    EXPECT_LE(max_abs_diff(out, ref), 1e-5 * max_abs(ref)) << "chunk " << chunk;
    for (int s = 0; s < 2; ++s) {
      EXPECT_LE(max_abs_diff(chunk_states[size_t(s)].ssm, seq_states[size_t(s)].ssm), 1e-5 * max_abs(seq_states[size_t(s)].ssm))
          << "chunk " << chunk << " sequence " << s;
      EXPECT_EQ(chunk_states[size_t(s)].conv, seq_states[size_t(s)].conv) << "chunk " << chunk;
    }
  }
}

TEST_F(Mamba2Test, PiecewiseRunsContinueTheState) {
  // Pieces shorter than the conv kernel exercise the conv state's carried inputs.
  const ModelConfig& c = model_->config;
  for (Mamba2Scan scan : {Mamba2Scan::kSequential, Mamba2Scan::kChunked}) {
    Mamba2Config m = c.mamba;
    m.chunk_size = 4;
    Mamba2Mixer mixer(m, float(c.rms_norm_eps), scan);
    std::vector<State> whole_states, piece_states;
    const auto whole = run(mixer, {{kSplit}, {kRows - kSplit}}, whole_states, 2);
    const auto pieces = run(mixer, {{1, 2, 7, 1, 9}, {5, 1, 1, 10}}, piece_states, 2);
    EXPECT_LE(max_abs_diff(pieces, whole), 1e-5 * max_abs(whole));
    for (int s = 0; s < 2; ++s) {
      EXPECT_EQ(piece_states[size_t(s)].conv, whole_states[size_t(s)].conv);
      EXPECT_LE(max_abs_diff(piece_states[size_t(s)].ssm, whole_states[size_t(s)].ssm),
                1e-5 * max_abs(whole_states[size_t(s)].ssm));
    }
  }
}

TEST(HybridCache, HoldsKvForAttentionLayersOnlyAndCountsTheRecurrentState) {
  const auto model = load_model(fixture_dir());
  const ModelConfig& c = model->config;
  const int64_t recurrent = 2 * (160 * 3 + 4 * 32 * 16) * 4;  // two Mamba-2 layers: conv + SSM state, float32
  const int64_t per_position = 2 * 2 * (2 * 16) * 4;          // two attention layers: K and V, 2 heads x 16
  for (const char* backend : {"eager", "paged"}) {
    Transformer tf(*model, test::attention(backend));
    KvCache cache = tf.new_cache();
    EXPECT_EQ(cache.num_layers(), 2) << backend;
    EXPECT_EQ(cache.recurrent_bytes(), recurrent) << backend;
    EXPECT_EQ(cache.bytes_used(), recurrent) << backend;
    const std::vector<int32_t> prompt = {1, 17, 300, 42, 5, 99, 7};
    SequenceStep step{&cache, prompt, -1};
    tf.forward({&step, 1});
    EXPECT_EQ(cache.length(0), 7) << backend;
    EXPECT_EQ(cache.length(1), 7) << backend;
    EXPECT_EQ(cache.bytes_used(), recurrent + 7 * per_position) << backend;
    EXPECT_GE(cache.bytes_reserved(), cache.bytes_used()) << backend;
    // The state moved, and clear() resets it: the same prompt again gives the same logits.
    EXPECT_GT(*std::max_element(cache.recurrent().ssm(0), cache.recurrent().ssm(0) + 4 * 32 * 16), 0.0f) << backend;
    KvCache forked = cache.fork();
    cache.clear();
    EXPECT_EQ(*std::max_element(cache.recurrent().ssm(2), cache.recurrent().ssm(2) + 4 * 32 * 16), 0.0f) << backend;
    SequenceStep again{&cache, prompt, -1};
    const auto first = tf.forward({&again, 1});
    KvCache fresh = tf.new_cache();
    SequenceStep other{&fresh, prompt, -1};
    EXPECT_EQ(tf.forward({&other, 1}), first) << backend;
    // A fork carries the recurrent state: continuing it equals continuing the original.
    const std::vector<int32_t> next = {11};
    SequenceStep a{&forked, next, -1}, b{&fresh, next, -1};
    EXPECT_EQ(tf.forward({&a, 1}), tf.forward({&b, 1})) << backend;
  }
  EXPECT_EQ(c.num_kv_layers(), 2);
}

TEST(HybridModel, PrefillThenDecodeEqualsTeacherForced) {
  const auto model = load_model(fixture_dir());
  const auto ref = test::load_hf_reference(fixture_dir());
  const int64_t vocab = ref.vocab, len = ref.prompt_len, split = 9;
  Transformer tf(*model, test::attention("eager"));
  for (int64_t b = 0; b < ref.batch; ++b) {
    const std::vector<int32_t> prompt(ref.input_ids.begin() + b * len, ref.input_ids.begin() + (b + 1) * len);
    KvCache whole = tf.new_cache();
    SequenceStep all{&whole, prompt, 0};
    const auto teacher = tf.forward({&all, 1});
    const auto d_ref = test::compare(teacher.data(), ref.logits.data() + b * len * vocab, len * vocab);
    char rel[32];
    std::snprintf(rel, sizeof rel, "%.3g", d_ref.relative());
    RecordProperty("max_rel_diff_vs_hf_prompt" + std::to_string(b), rel);
    EXPECT_LE(d_ref.relative(), 1e-4);

    KvCache cache = tf.new_cache();
    SequenceStep pre{&cache, std::span<const int32_t>(prompt.data(), size_t(split)), 0};
    std::vector<float> got = tf.forward({&pre, 1});
    for (int64_t t = split; t < len; ++t) {
      SequenceStep dec{&cache, std::span<const int32_t>(&prompt[size_t(t)], 1), -1};
      const auto row = tf.forward({&dec, 1});
      got.insert(got.end(), row.begin(), row.end());
    }
    const auto d = test::compare(got.data(), teacher.data(), len * vocab);
    EXPECT_LE(d.relative(), 1e-5) << "prompt " << b << ": max |diff| " << d.max_abs_diff;
  }
}

}  // namespace
}  // namespace ctx
