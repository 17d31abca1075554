// A flex mask given as text in a config: named masks (flex_attention.h) joined by `&` (and) and `|`
// (or), `&` binding tighter, parentheses for grouping, spaces ignored:
//   causal    sliding_window    document&sliding_window    prefix_lm|chunked    (document|prefix_lm)&sliding_window
// Names: causal, sliding_window (needs window > 0), prefix_lm (prefix > 0), chunked (chunk > 0),
// document (documents: non-empty list of lengths). A MaskExpr is itself a mask mod with an interval
// classifier, so flex_attention() and BlockMask::build() take it like any compiled mod (it is
// evaluated per element only in PARTIAL tiles). Immutable after parse; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/cuda/flex_mask.h"
#include "plugins/attention/flex/flex_attention.h"

namespace ctx {

class MaskExpr {
 public:
  // Parameters of the named masks.
  struct Args {
    int64_t window = 0, prefix = 0, chunk = 0;
    std::vector<int64_t> documents;
  };

  // Throws ctx::Error "<where>: ..." naming the expression and the problem: a syntax error with its
  // position, an unknown name with the known ones, or a mask whose parameter is missing.
  static MaskExpr parse(std::string_view text, const Args& args, std::string_view where);

  // The names parse() knows.
  static const std::vector<std::string>& names();

  // This mask and kv_idx > q_idx - window (the engine's sliding window); itself when window <= 0.
  MaskExpr with_key_window(int64_t window) const;

  // When the mask is exactly the engine's base mask (causal, sliding_window, and of those and key
  // windows), its window (0: plain causal), so that callers can run the compiled CausalWindowMask.
  std::optional<int64_t> causal_window() const;

  bool operator()(int64_t b, int64_t h, int64_t q, int64_t k) const { return eval(root_, b, h, q, k); }
  BlockClass classify(int64_t b, int64_t h, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    return classify_node(root_, b, h, q0, q1, k0, k1);
  }

  const std::string& text() const { return text_; }

  // The same mask as the GPU kernels take it (core/cuda/flex_mask.h); throws ctx::Error naming the
  // expression when it has more operations or documents than that program holds.
  cuda::FlexMask gpu_program() const;

 private:
  struct Combine {
    bool is_and;
    int32_t lhs, rhs;
  };
  using Node = std::variant<flex::Causal, flex::SlidingWindow, flex::PrefixLm, flex::Chunked, flex::Document,
                            flex::KeyWindow, Combine>;

  bool eval(int32_t n, int64_t b, int64_t h, int64_t q, int64_t k) const;
  BlockClass classify_node(int32_t n, int64_t b, int64_t h, int64_t q0, int64_t q1, int64_t k0, int64_t k1) const;
  // Whether node n is an and of causal / sliding / key windows; accumulates causality and the window.
  bool base_parts(int32_t n, bool& causal, int64_t& window) const;

  friend class MaskExprParser;
  void append_postfix(int32_t n, cuda::FlexMask& m) const;

  std::vector<Node> nodes_;
  int32_t root_ = -1;
  std::string text_;
  std::vector<int64_t> documents_;  // the document lengths (mask `document`)
};

}  // namespace ctx
