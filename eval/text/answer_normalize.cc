#include "eval/text/answer_normalize.h"

#include "eval/text/unicode.h"

namespace ctx::text {
namespace {

bool is_ascii_punctuation(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
}

bool is_article(std::u32string_view w) { return w == U"a" || w == U"an" || w == U"the"; }

}  // namespace

std::vector<std::u32string> normalize_answer_tokens(std::string_view utf8) {
  const std::u32string lowered = py_lower(utf8_to_u32(utf8));
  std::u32string text;
  text.reserve(lowered.size());
  for (char32_t c : lowered)
    if (!is_ascii_punctuation(c)) text.push_back(c);
  // re.sub(r"\b(a|an|the)\b", " ") == replace every maximal \w run that is an article.
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (!py_is_word(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i;
    while (j < text.size() && py_is_word(text[j])) ++j;
    const std::u32string_view word(text.data() + i, j - i);
    if (is_article(word))
      out.push_back(U' ');
    else
      out.append(word);
    i = j;
  }
  return py_split(out);
}

}  // namespace ctx::text
