// The answer normalisation of the official SQuAD v1.1 and HotpotQA evaluation scripts (also used by
// LongBench's qa_f1_score), reproduced on code points with Python 3 semantics:
//   1. str.lower() (full Unicode case mapping, see unicode.h);
//   2. delete the 32 ASCII `string.punctuation` characters only (curly quotes, dashes, « » survive);
//   3. replace the words "a", "an", "the" with a space, where a word is a maximal run of Python `\w`
//      characters (so Unicode letters and digits extend a word, combining marks end it);
//   4. split on Unicode whitespace (str.split()) and rejoin with single spaces.
// Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eval/text/token_list.h"

namespace ctx::text {

// The normalised answer as its whitespace-separated tokens in UTF-8 (joining them with ' ' gives the
// string the Python script compares). Pieces between ASCII whitespace that are ASCII (or whose
// other characters are caseless punctuation, unicode.h) take a byte-level path with the same
// result; the others are processed on code points (invalid bytes read as U+FFFD) and encoded back.
// `out` is cleared first.
void normalize_answer_tokens(std::string_view utf8, TokenList& out);
std::vector<std::string> normalize_answer_tokens(std::string_view utf8);

}  // namespace ctx::text
