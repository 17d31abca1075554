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

bool is_ascii_word(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

bool is_article(std::string_view w) { return w == "a" || w == "an" || w == "the"; }

// One piece of text without ASCII whitespace, ASCII but for caseless punctuation (unicode.h): bytes,
// \w = [a-z0-9_] after lowering. The article words end the token they interrupt (they become spaces
// in the Python script).
void normalize_bytes(std::string_view s, TokenList& tokens) {
  thread_local std::string text;  // lowercased, punctuation dropped
  text.clear();
  for (char c : s)
    if (!is_ascii_punctuation(static_cast<unsigned char>(c))) text.push_back(c >= 'A' && c <= 'Z' ? char(c + 32) : c);
  std::string& out = tokens.bytes();
  size_t token_start = out.size();
  auto end_token = [&] {
    if (out.size() > token_start) tokens.end_token();
    token_start = out.size();
  };
  for (size_t i = 0; i < text.size();) {
    size_t j = i + 1;
    if (is_ascii_word(text[i]))
      while (j < text.size() && is_ascii_word(text[j])) ++j;
    const std::string_view run(text.data() + i, j - i);  // a word, or one other character
    if (is_article(run))
      end_token();
    else
      out.append(run);
    i = j;
  }
  end_token();
}

// Any other piece: on code points.
void normalize_code_points(std::string_view utf8, TokenList& tokens) {
  const std::u32string lowered = py_lower(utf8_to_u32(utf8));
  std::u32string text;
  text.reserve(lowered.size());
  for (char32_t c : lowered)
    if (!is_ascii_punctuation(c)) text.push_back(c);
  for (const auto& t : py_split(drop_articles(text, py_is_word))) tokens.push_back(u32_to_utf8(t));
}

}  // namespace

void normalize_answer_tokens(std::string_view utf8, TokenList& tokens) {
  // Every step is local to the pieces between ASCII whitespace (lowering included, unicode.h), so
  // ASCII pieces (and those with caseless punctuation) take the byte path; only the others are decoded.
  tokens.clear();
  for (size_t i = 0; i < utf8.size();) {
    while (i < utf8.size() && is_ascii_space(utf8[i])) ++i;
    size_t j = i;
    while (j < utf8.size() && !is_ascii_space(utf8[j])) ++j;
    if (j > i) {
      const std::string_view piece = utf8.substr(i, j - i);
      if (is_ascii_or_caseless_punctuation(piece))
        normalize_bytes(piece, tokens);
      else
        normalize_code_points(piece, tokens);
    }
    i = j;
  }
}

std::vector<std::string> normalize_answer_tokens(std::string_view utf8) {
  TokenList tokens;
  normalize_answer_tokens(utf8, tokens);
  return tokens.to_strings();
}

}  // namespace ctx::text
