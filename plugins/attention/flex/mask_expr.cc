#include "plugins/attention/flex/mask_expr.h"

#include <algorithm>
#include <cctype>

#include "core/base/error.h"
#include "core/plugin/params.h"

namespace ctx {

// Recursive descent over  expr := term ('|' term)*,  term := factor ('&' factor)*,
// factor := name | '(' expr ')'.
class MaskExprParser {
 public:
  MaskExprParser(std::string_view text, const MaskExpr::Args& args, std::string_view where, MaskExpr& out)
      : text_(text), args_(args), where_(where), out_(out) {}

  int32_t parse() {
    skip_spaces();
    if (pos_ == text_.size()) fail(where_, ": mask expression is empty (e.g. mask=causal or mask=document&sliding_window)");
    const int32_t root = expr();
    skip_spaces();
    if (pos_ != text_.size()) syntax("expected '&', '|' or the end");
    return root;
  }

 private:
  int32_t expr() {
    int32_t lhs = term();
    while (accept('|')) lhs = add(MaskExpr::Combine{false, lhs, term()});
    return lhs;
  }
  int32_t term() {
    int32_t lhs = factor();
    while (accept('&')) lhs = add(MaskExpr::Combine{true, lhs, factor()});
    return lhs;
  }
  int32_t factor() {
    skip_spaces();
    if (accept('(')) {
      const int32_t inner = expr();
      if (!accept(')')) syntax("expected ')'");
      return inner;
    }
    const size_t begin = pos_;
    while (pos_ < text_.size() && (std::isalnum((unsigned char)text_[pos_]) || text_[pos_] == '_')) ++pos_;
    if (pos_ == begin) syntax("expected a mask name or '('");
    return add(named(text_.substr(begin, pos_ - begin)));
  }

  MaskExpr::Node named(std::string_view name) {
    if (name == "causal") return flex::Causal{};
    if (name == "sliding_window") return flex::SlidingWindow{require(name, "window", args_.window)};
    if (name == "prefix_lm") return flex::PrefixLm{require(name, "prefix", args_.prefix)};
    if (name == "chunked") return flex::Chunked{require(name, "chunk", args_.chunk)};
    if (name == "document") {
      if (args_.documents.empty())
        fail(where_, ": mask 'document' needs parameter 'documents' (the document lengths, e.g. documents=[512,300,212])");
      return flex::Document(args_.documents);
    }
    std::string known;
    for (const std::string& n : MaskExpr::names()) known += (known.empty() ? "" : ", ") + n;
    fail(where_, ": unknown mask ", quote_param_text(name), " in mask expression ", quote_param_text(text_), " (known: ",
         known, "; combine them with & and |)");
  }

  int64_t require(std::string_view name, std::string_view param, int64_t value) {
    if (value <= 0)
      fail(where_, ": mask '", name, "' needs parameter '", param, "' > 0 (e.g. mask=", name, ",", param, "=256)");
    return value;
  }

  int32_t add(MaskExpr::Node node) {
    out_.nodes_.push_back(std::move(node));
    return int32_t(out_.nodes_.size() - 1);
  }
  void skip_spaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }
  bool accept(char c) {
    skip_spaces();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  [[noreturn]] void syntax(std::string_view expected) {
    skip_spaces();
    fail(where_, ": bad mask expression ", quote_param_text(text_), " at position ", pos_ + 1, ": ", expected,
         pos_ < text_.size() ? str_cat(", found '", text_[pos_], "'") : std::string(", found the end"));
  }

  std::string_view text_;
  const MaskExpr::Args& args_;
  std::string_view where_;
  MaskExpr& out_;
  size_t pos_ = 0;
};

MaskExpr MaskExpr::parse(std::string_view text, const Args& args, std::string_view where) {
  MaskExpr e;
  e.text_ = std::string(text);
  e.root_ = MaskExprParser(text, args, where, e).parse();
  e.documents_ = args.documents;
  return e;
}

void MaskExpr::append_postfix(int32_t n, cuda::FlexMask& m) const {
  using cuda::FlexMask;
  const Node& node = nodes_[size_t(n)];
  if (const auto* c = std::get_if<Combine>(&node)) {
    append_postfix(c->lhs, m);
    append_postfix(c->rhs, m);
  }
  if (m.count == FlexMask::kMaxOps)
    fail("flex mask '", text_, "': more than ", FlexMask::kMaxOps, " operations for the GPU kernels");
  int64_t arg = 0;
  FlexMask::Op op = FlexMask::kCausal;
  if (std::holds_alternative<flex::Causal>(node)) {
    op = FlexMask::kCausal;
  } else if (const auto* w = std::get_if<flex::SlidingWindow>(&node)) {
    op = FlexMask::kSlidingWindow, arg = w->window;
  } else if (const auto* p = std::get_if<flex::PrefixLm>(&node)) {
    op = FlexMask::kPrefixLm, arg = p->prefix;
  } else if (const auto* c = std::get_if<flex::Chunked>(&node)) {
    op = FlexMask::kChunked, arg = c->chunk;
  } else if (std::holds_alternative<flex::Document>(node)) {
    op = FlexMask::kDocument;
  } else if (const auto* k = std::get_if<flex::KeyWindow>(&node)) {
    op = FlexMask::kKeyWindow, arg = k->window;
  } else {
    op = std::get<Combine>(node).is_and ? FlexMask::kAnd : FlexMask::kOr;
  }
  m.ops[m.count] = op, m.args[m.count++] = arg;
}

cuda::FlexMask MaskExpr::gpu_program() const {
  cuda::FlexMask m;
  append_postfix(root_, m);
  if (int64_t(documents_.size()) > cuda::FlexMask::kMaxDocuments)
    fail("flex mask '", text_, "': ", documents_.size(), " documents; the GPU kernels take at most ",
         cuda::FlexMask::kMaxDocuments);
  int64_t start = 0;
  for (int64_t len : documents_) m.starts[m.documents++] = start, start += len;
  return m;
}

const std::vector<std::string>& MaskExpr::names() {
  static const std::vector<std::string> n = {"causal", "sliding_window", "prefix_lm", "chunked", "document"};
  return n;
}

MaskExpr MaskExpr::with_key_window(int64_t window) const {
  if (window <= 0) return *this;
  MaskExpr e = *this;
  e.nodes_.push_back(flex::KeyWindow{window});
  e.nodes_.push_back(Combine{true, root_, int32_t(e.nodes_.size() - 1)});
  e.root_ = int32_t(e.nodes_.size() - 1);
  return e;
}

bool MaskExpr::base_parts(int32_t n, bool& causal, int64_t& window) const {
  const Node& node = nodes_[size_t(n)];
  const auto narrow = [&window](int64_t w) { window = window > 0 ? std::min(window, w) : w; };
  if (std::holds_alternative<flex::Causal>(node)) {
    causal = true;
    return true;
  }
  if (const auto* s = std::get_if<flex::SlidingWindow>(&node)) {
    causal = true;
    narrow(s->window);
    return true;
  }
  if (const auto* w = std::get_if<flex::KeyWindow>(&node)) {
    narrow(w->window);
    return true;
  }
  if (const auto* c = std::get_if<Combine>(&node))
    return c->is_and && base_parts(c->lhs, causal, window) && base_parts(c->rhs, causal, window);
  return false;
}

std::optional<int64_t> MaskExpr::causal_window() const {
  bool causal = false;
  int64_t window = 0;
  if (!base_parts(root_, causal, window) || !causal) return std::nullopt;
  return window;
}

bool MaskExpr::eval(int32_t n, int64_t b, int64_t h, int64_t q, int64_t k) const {
  return std::visit(
      [&](const auto& m) -> bool {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, Combine>)
          return m.is_and ? eval(m.lhs, b, h, q, k) && eval(m.rhs, b, h, q, k)
                          : eval(m.lhs, b, h, q, k) || eval(m.rhs, b, h, q, k);
        else
          return m(b, h, q, k);
      },
      nodes_[size_t(n)]);
}

BlockClass MaskExpr::classify_node(int32_t n, int64_t b, int64_t h, int64_t q0, int64_t q1, int64_t k0,
                                   int64_t k1) const {
  return std::visit(
      [&](const auto& m) -> BlockClass {
        if constexpr (std::is_same_v<std::decay_t<decltype(m)>, Combine>) {
          const BlockClass l = classify_node(m.lhs, b, h, q0, q1, k0, k1), r = classify_node(m.rhs, b, h, q0, q1, k0, k1);
          return m.is_and ? block_and(l, r) : block_or(l, r);
        } else {
          return m.classify(b, h, q0, q1, k0, k1);
        }
      },
      nodes_[size_t(n)]);
}

}  // namespace ctx
