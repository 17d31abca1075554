#include "core/plugin/plugin_spec.h"

#include <charconv>

#include "core/base/error.h"

namespace ctx {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A cursor over the spec text; every error names `where` and the offending spot.
class Parser {
 public:
  Parser(std::string_view text, std::string_view where) : s_(text), where_(where) {}

  PluginSpecText parse() {
    PluginSpecText out;
    skip_space();
    out.name = std::string(word());
    if (out.name.empty())
      error(at_end() ? "empty plugin name" : str_cat("expected a plugin name, found '", s_[i_], "'"));
    skip_space();
    if (peek('@')) {
      ++i_;
      skip_space();
      out.version = version();
      skip_space();
    }
    if (at_end()) return out;
    if (peek(':')) {
      ++i_;
      if (trim(s_.substr(i_)).empty()) error("expected key=value parameters after ':'");
      args(/*braced=*/false, out.args);
    } else if (peek('{')) {
      ++i_;
      args(/*braced=*/true, out.args);
      skip_space();
      if (!at_end()) error(str_cat("unexpected text after '}': ", quote_param_text(s_.substr(i_))));
    } else {
      error(str_cat("unexpected '", s_[i_], "' after the name (expected '@', ':' or '{')"));
    }
    return out;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail(where_, ": malformed spec ", quote_param_text(s_), ": ", what);
  }
  bool at_end() const { return i_ >= s_.size(); }
  bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void skip_space() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }
  std::string_view word() {
    const size_t start = i_;
    while (i_ < s_.size() && is_word(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }

  int version() {
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    int v = 0;
    auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + i_, v);
    if (start == i_ || ec != std::errc()) error("expected a version number after '@'");
    return v;
  }

  // Parameters up to the end of the text (command-line form) or up to the closing '}' (braced form).
  // Commas split parameters except inside [...] (list values).
  void args(bool braced, std::vector<std::pair<std::string, std::string>>& out) {
    if (braced) {
      skip_space();
      if (peek('}')) {
        ++i_;
        return;
      }
    }
    size_t start = i_;
    int depth = 0;
    for (;; ++i_) {
      if (at_end()) {
        if (depth > 0) error("unbalanced '[' (missing ']')");
        if (braced) error("missing '}'");
        arg(start, i_, out);
        return;
      }
      const char c = s_[i_];
      if (c == '[') {
        ++depth;
      } else if (c == ']') {
        if (depth == 0) error(str_cat("unbalanced ']' at offset ", i_));
        --depth;
      } else if (c == '{') {
        error(str_cat("unexpected '{' at offset ", i_));
      } else if (c == '}') {
        if (!braced) error(str_cat("unexpected '}' at offset ", i_));
        if (depth > 0) error("unbalanced '[' (missing ']')");
        arg(start, i_, out);
        ++i_;
        return;
      } else if (c == ',' && depth == 0) {
        arg(start, i_, out);
        start = i_ + 1;
      }
    }
  }

  void arg(size_t begin, size_t end, std::vector<std::pair<std::string, std::string>>& out) const {
    const std::string_view a = trim(s_.substr(begin, end - begin));
    if (a.empty()) error(str_cat("empty parameter at offset ", begin));
    const size_t eq = a.find('=');
    if (eq == std::string_view::npos)
      error(str_cat("expected key=value, found ", quote_param_text(a), " (list values go in brackets: k=[0,1])"));
    const std::string_view key = trim(a.substr(0, eq));
    if (key.empty()) error(str_cat("missing parameter name before '=' in ", quote_param_text(a)));
    for (char c : key)
      if (!is_word(c)) error(str_cat("invalid parameter name ", quote_param_text(key)));
    out.emplace_back(std::string(key), std::string(trim(a.substr(eq + 1))));
  }

  std::string_view s_;
  std::string_view where_;
  size_t i_ = 0;
};

}  // namespace

std::string PluginSpec::canonical() const {
  std::string s = str_cat(name, "@", version, "{");
  for (const auto& [k, v] : params.values()) {  // std::map: sorted by name
    if (s.back() != '{') s += ',';
    s += k;
    s += '=';
    s += format_param_value(v);
  }
  return s + "}";
}

PluginSpecText parse_plugin_spec_text(std::string_view text, std::string_view where) {
  return Parser(text, where).parse();
}

}  // namespace ctx
