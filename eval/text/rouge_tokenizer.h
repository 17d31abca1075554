// The DefaultTokenizer of Google's rouge-score 0.1.2 (tokenize.py), on code points:
// Python str.lower(); every character outside [a-z0-9] separates tokens (so "naïve" -> na ve,
// NFD "i\u0301" keeps the i, "İ" -> i, the Kelvin sign -> k, CJK/Greek/full-width vanish); with
// `use_stemmer`, tokens longer than 3 characters go through the nltk Porter stemmer
// (porter_stemmer.h; "was" stays, "does" -> "doe"). Tokens are ASCII [a-z0-9]+.
// Each code point is lowercased alone (ASCII byte by byte, the rest through py_lower): the same
// result, since only the final-sigma rule depends on context and no sigma is a token character.
// Thread-safe (the stem memo is per thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ctx::text {

// A tokenised text: views into `buf` or into the thread's stem memo, valid until the next
// porter_stem_memo_trim() and while the object lives (not copyable).
struct RougeTokens {
  RougeTokens() = default;
  RougeTokens(const RougeTokens&) = delete;
  RougeTokens& operator=(const RougeTokens&) = delete;

  std::string buf;  // one byte per lowered code point: [a-z0-9], '\n', or ' ' for the rest
  std::vector<std::string_view> tokens;
  // text.split("\n") without empty strings: sentence k holds tokens [sentence_ends[k-1], sentence_ends[k]).
  std::vector<uint32_t> sentence_ends;
};

void rouge_tokenize(std::string_view utf8, bool use_stemmer, RougeTokens& out);
std::vector<std::string> rouge_tokenize(std::string_view utf8, bool use_stemmer);

}  // namespace ctx::text
