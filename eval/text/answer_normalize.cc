#include "eval/text/answer_normalize.h"

#include "eval/text/interner.h"
#include "eval/text/unicode.h"

namespace ctx::text {
namespace {

bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

// re.sub(r"\b(a|an|the)\b", " ", text) == replace every maximal \w run that is an article.
template <class Char, class IsWord>
std::basic_string<Char> drop_articles(const std::basic_string<Char>& text, IsWord is_word) {
  using View = std::basic_string_view<Char>;
  static constexpr Char kA[] = {'a'}, kAn[] = {'a', 'n'}, kThe[] = {'t', 'h', 'e'};
  std::basic_string<Char> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (!is_word(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i;
    while (j < text.size() && is_word(text[j])) ++j;
    const View w(text.data() + i, j - i);
    if (w == View(kA, 1) || w == View(kAn, 2) || w == View(kThe, 3))
      out.push_back(Char(' '));
    else
      out.append(w);
    i = j;
  }
  return out;
}

// One piece of text without ASCII whitespace, all ASCII: bytes, \w = [a-z0-9_] after lowering.
void normalize_ascii(std::string_view s, std::vector<std::string>& tokens) {
  std::string text;
  text.reserve(s.size());
  for (char c : s)
    if (!is_ascii_punctuation(char32_t(c))) text.push_back(c >= 'A' && c <= 'Z' ? char(c + 32) : c);
  const std::string out =
      drop_articles(text, [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
  for (size_t i = 0; i < out.size();) {
    while (i < out.size() && out[i] == ' ') ++i;
    size_t j = i;
    while (j < out.size() && out[j] != ' ') ++j;
    if (j > i) tokens.emplace_back(out, i, j - i);
    i = j;
  }
}

// Any other piece: on code points.
void normalize_code_points(std::string_view utf8, std::vector<std::string>& tokens) {
  const std::u32string lowered = py_lower(utf8_to_u32(utf8));
  std::u32string text;
  text.reserve(lowered.size());
  for (char32_t c : lowered)
    if (!is_ascii_punctuation(c)) text.push_back(c);
  for (const auto& t : py_split(drop_articles(text, py_is_word))) tokens.push_back(u32_to_utf8(t));
}

}  // namespace

std::vector<std::string> normalize_answer_tokens(std::string_view utf8) {
  // Every step is local to the pieces between ASCII whitespace (lowering included, unicode.h), so
  // ASCII pieces take the byte path and only the others are decoded.
  std::vector<std::string> tokens;
  for (size_t i = 0; i < utf8.size();) {
    while (i < utf8.size() && is_ascii_space(utf8[i])) ++i;
    size_t j = i;
    while (j < utf8.size() && !is_ascii_space(utf8[j])) ++j;
    if (j > i) {
      const std::string_view piece = utf8.substr(i, j - i);
      if (is_ascii(piece))
        normalize_ascii(piece, tokens);
      else
        normalize_code_points(piece, tokens);
    }
    i = j;
  }
  return tokens;
}

}  // namespace ctx::text
