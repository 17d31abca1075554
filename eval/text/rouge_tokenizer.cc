#include "eval/text/rouge_tokenizer.h"

#include "eval/text/porter_stemmer.h"
#include "eval/text/unicode.h"

namespace ctx::text {

std::vector<std::string> rouge_tokenize(std::string_view utf8, bool use_stemmer) {
  const std::u32string lowered = py_lower(utf8_to_u32(utf8));
  std::vector<std::string> tokens;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    tokens.push_back(use_stemmer && cur.size() > 3 ? porter_stem_memo(cur) : cur);
    cur.clear();
  };
  for (char32_t c : lowered) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      cur.push_back(char(c));
    else
      flush();
  }
  flush();
  return tokens;
}

}  // namespace ctx::text
