// The Porter stemmer exactly as nltk 3.8's `PorterStemmer()` in its default NLTK_EXTENSIONS mode
// (written from the algorithm description and that behaviour, not from its code): the irregular-forms
// table (skies -> sky, dying -> die, news, proceed, ...), words of <= 2 code points unchanged, the
// NLTK variants of steps 1a/1b/1c/2 (ies/ied of 4 letters, y -> i after a consonant that is not the
// first letter, alli/fulli/logi, bli -> ble) and the 2-letter *o condition.
// Works on code points; a letter other than a, e, i, o, u (and y after a vowel) counts as a consonant,
// including non-ASCII ones, as in Python. Debian's libstemmer "porter" differs in several rules, which
// is why this exists. Pure and thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace ctx::text {

// nltk `stem(word)`: lowercases with Python str.lower() first (to_lowercase=True).
std::u32string porter_stem(std::u32string_view word);
// The same for UTF-8 text.
std::string porter_stem_utf8(std::string_view word);
// porter_stem_utf8 through a per-thread memo: metrics stem the same vocabulary over and over. The
// view stays valid until porter_stem_memo_trim() on the same thread.
std::string_view porter_stem_memo(std::string_view utf8_word);
// Empties this thread's memo once it holds 1M words; metrics call it before each comparison.
void porter_stem_memo_trim();

}  // namespace ctx::text
