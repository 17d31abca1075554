// `flex`: FlexAttention with the built-in mods of flex_attention.h chosen by name in the config
// (mask expression, score mod and their parameters), run through the flex_attention() template.
// The engine's sliding window (AttentionParams::window) is always ANDed into the mask. Masks that
// reduce to the engine's base mask (causal, sliding_window) run the compiled CausalWindowMask
// instead of the interpreted expression, i.e. the same instantiation as `flash`.
#include "plugins/attention/flex/flex_attention.h"

#include <algorithm>
#include <bit>
#include <memory>
#include <mutex>

#include "core/plugin/catalog.h"
#include "plugins/attention/common/visible_range.h"
#include "plugins/attention/flex/mask_expr.h"

namespace ctx {

namespace flex {

Document::Document(std::span<const int64_t> lengths) {
  CTX_CHECK(!lengths.empty());
  int64_t end = 0;
  for (size_t i = 0; i + 1 < lengths.size(); ++i) {
    CTX_CHECK(lengths[i] > 0);
    ends_.push_back(end += lengths[i]);
  }
}

int64_t Document::segment(int64_t pos) const {
  return int64_t(std::upper_bound(ends_.begin(), ends_.end(), pos) - ends_.begin());
}

std::vector<float> alibi_slopes(int64_t num_heads) {
  CTX_CHECK(num_heads > 0);
  const int64_t closest = int64_t(std::bit_floor(uint64_t(num_heads)));
  std::vector<float> slopes;
  for (int64_t i = 1; i <= closest; ++i) slopes.push_back(float(std::exp2(-8.0 * double(i) / double(closest))));
  for (int64_t i = 0; i < std::min(closest, num_heads - closest); ++i)
    slopes.push_back(float(std::exp2(-4.0 * double(2 * i + 1) / double(closest))));
  return slopes;
}

}  // namespace flex

BlockMask::Counts BlockMask::counts() const {
  Counts c;
  for (BlockClass x : classes_) (x == BlockClass::kFull ? c.full : x == BlockClass::kEmpty ? c.empty : c.partial) += 1;
  return c;
}

namespace {

constexpr const char* kWhere = "attention plugin 'flex'";

enum class ScoreKind { kNone, kSoftcap, kAlibi, kSoftcapAlibi, kAlibiSoftcap };

ScoreKind score_kind(const std::string& s) {
  if (s == "softcap") return ScoreKind::kSoftcap;
  if (s == "alibi") return ScoreKind::kAlibi;
  if (s == "softcap+alibi") return ScoreKind::kSoftcapAlibi;
  if (s == "alibi+softcap") return ScoreKind::kAlibiSoftcap;
  return ScoreKind::kNone;
}

class FlexAttention final : public AttentionBackend {
 public:
  FlexAttention(MaskExpr mask, ScoreKind score, float softcap, TileOptions options)
      : mask_(std::move(mask)), score_(score), softcap_(softcap), options_(options) {}

  Support supports(const AttentionParams& p, KvLayout layout) const override {
    if (layout != KvLayout::kContiguous) return Support::no("flex reads a contiguous KV cache");
    return check_shape(p);
  }

  cuda::FlexMask gpu_flex_mask() const override { return mask_.gpu_program(); }

  cuda::ScoreMod gpu_score_mod() const override {
    using M = cuda::ScoreMod;
    cuda::ScoreMod m;
    m.softcap = softcap_;
    const auto add = [&m](M::Op op) { m.ops[m.count++] = op; };
    switch (score_) {
      case ScoreKind::kNone: break;
      case ScoreKind::kSoftcap: add(M::kSoftcap); break;
      case ScoreKind::kAlibi: add(M::kAlibi); break;
      case ScoreKind::kSoftcapAlibi: add(M::kSoftcap), add(M::kAlibi); break;
      case ScoreKind::kAlibiSoftcap: add(M::kAlibi), add(M::kSoftcap); break;
    }
    return m;
  }

  void forward(const AttentionParams& p, std::span<const AttentionSequence> batch) const override {
    int64_t length = 0;
    for (const AttentionSequence& s : batch) length = std::max(length, s.kv.length);
    if (length == 0) return;
    const std::shared_ptr<const Compiled> c = compiled(p.window, length);
    if (c->base_window) {
      with_score(p, batch, CausalWindowMask{*c->base_window}, c->blocks);
    } else {
      with_score(p, batch, c->mask, c->blocks);
    }
  }

 private:
  // The mask for one engine window, and its block mask over [0, extent) positions.
  struct Compiled {
    int64_t window;
    MaskExpr mask;
    std::optional<int64_t> base_window;
    BlockMask blocks;
  };

  template <class Mask>
  void with_score(const AttentionParams& p, std::span<const AttentionSequence> batch, const Mask& mask,
                  const BlockMask& blocks) const {
    const flex::SoftCap cap{softcap_};
    switch (score_) {
      case ScoreKind::kNone: return flex_attention(p, batch, mask, flex::NoScore{}, &blocks, options_);
      case ScoreKind::kSoftcap: return flex_attention(p, batch, mask, cap, &blocks, options_);
      case ScoreKind::kAlibi: return flex_attention(p, batch, mask, flex::Alibi(p.num_heads), &blocks, options_);
      case ScoreKind::kSoftcapAlibi:
        return flex_attention(p, batch, mask, flex::score_then(cap, flex::Alibi(p.num_heads)), &blocks, options_);
      case ScoreKind::kAlibiSoftcap:
        return flex_attention(p, batch, mask, flex::score_then(flex::Alibi(p.num_heads), cap), &blocks, options_);
    }
  }

  // Built once per engine window and grown geometrically (decode lengthens sequences one position at
  // a time); blocks are aligned at 0, so a larger block mask serves every shorter sequence.
  std::shared_ptr<const Compiled> compiled(int64_t window, int64_t length) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(cache_.begin(), cache_.end(), [&](const auto& c) { return c->window == window; });
    if (it != cache_.end() && (*it)->blocks.q_len() >= length) return *it;
    const int64_t extent = int64_t(std::bit_ceil(uint64_t(std::max<int64_t>(length, 1024))));
    auto c = std::make_shared<Compiled>();
    c->window = window;
    c->mask = mask_.with_key_window(window);
    c->base_window = c->mask.causal_window();
    c->blocks = BlockMask::build(c->mask, extent, extent, options_.block_q, options_.block_kv);
    if (it != cache_.end()) {
      *it = c;
    } else {
      cache_.push_back(c);
    }
    return c;
  }

  MaskExpr mask_;
  ScoreKind score_;
  float softcap_;
  TileOptions options_;
  mutable std::mutex mu_;
  mutable std::vector<std::shared_ptr<const Compiled>> cache_;
};

}  // namespace

void register_flex(Catalog& catalog) {
  catalog.attention.add(
      {"flex", 1, "FlexAttention: named mask/score mods (composable with & |), block-sparse tiles; contiguous KV",
       {ParamSpec::String("mask", "causal",
                          "mask expression over causal, sliding_window, prefix_lm, chunked, document with & (and), "
                          "| (or) and parentheses, e.g. document&sliding_window; the model's window is always ANDed in"),
        ParamSpec::Choice("score", "none", {"none", "softcap", "alibi", "softcap+alibi", "alibi+softcap"},
                          "score mod; a+b applies a then b"),
        ParamSpec::Int("window", 0, 0, std::nullopt, "sliding_window: keys per query (the query's own included)"),
        ParamSpec::Int("prefix", 0, 0, std::nullopt, "prefix_lm: bidirectional positions at the start"),
        ParamSpec::Int("chunk", 0, 0, std::nullopt, "chunked: positions per chunk"),
        ParamSpec::IntList("documents", {}, 1, 1e12,
                           "document: document lengths in order; later positions belong to the last document"),
        ParamSpec::Float("softcap", 0.0, 0.0, std::nullopt, "softcap: cap in cap * tanh(score / cap)"),
        ParamSpec::Int("block_q", 64, 1, 1024, "query positions per block (times the query heads of a KV group)"),
        ParamSpec::Int("block_kv", 64, 1, 1024, "keys per block"),
        ParamSpec::Int("num_splits", 0, 0, 1024, "decode (n_new <= 4) KV splits; 0 = auto from threads and length")}},
      [](const Params& params) {
        MaskExpr::Args args{params.get_int("window"), params.get_int("prefix"), params.get_int("chunk"),
                            params.get_int_list("documents")};
        MaskExpr mask = MaskExpr::parse(params.get_string("mask"), args, kWhere);
        const ScoreKind score = score_kind(params.get_string("score"));
        const double softcap = params.get_float("softcap");
        if (score != ScoreKind::kNone && score != ScoreKind::kAlibi && softcap <= 0.0)
          fail(kWhere, ": score '", params.get_string("score"), "' needs parameter 'softcap' > 0 (e.g. softcap=50)");
        return std::make_unique<FlexAttention>(
            std::move(mask), score, float(softcap),
            TileOptions{params.get_int("block_q"), params.get_int("block_kv"), params.get_int("num_splits")});
      });
}

}  // namespace ctx
