// The DefaultTokenizer of Google's rouge-score 0.1.2 (tokenize.py), on code points:
// Python str.lower(); every character outside [a-z0-9] separates tokens (so "naïve" -> na ve,
// NFD "i\u0301" keeps the i, "İ" -> i, the Kelvin sign -> k, CJK/Greek/full-width vanish); with
// `use_stemmer`, tokens longer than 3 characters go through the nltk Porter stemmer
// (porter_stemmer.h; "was" stays, "does" -> "doe"). Tokens are ASCII [a-z0-9]+.
// Thread-safe (the stem memo is per thread).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ctx::text {

std::vector<std::string> rouge_tokenize(std::string_view utf8, bool use_stemmer);

}  // namespace ctx::text
