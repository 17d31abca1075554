// Unicode helpers that reproduce CPython 3.11 `str` semantics on code points, for metrics that must
// match Python reference scorers bit for bit: UTF-8 <-> code points, str.lower() (full case mapping
// with special casing and the final-sigma rule, through ICU's root locale), str.isspace(), and the
// `\w` / `\d` classes of Python's `re` on str patterns. Code points are kept exactly: nothing is
// normalised (NFC and NFD texts stay different, as in Python).
// All functions are pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eval/text/token_list.h"

namespace ctx::text {

// Decodes UTF-8. Invalid bytes decode to U+FFFD each (JSON input is already validated by the parser).
std::u32string utf8_to_u32(std::string_view s);
// The code point at s[i] as utf8_to_u32 decodes it; `len` gets the bytes it takes (1 for an invalid byte).
char32_t decode_utf8_at(std::string_view s, size_t i, size_t& len);
// True for the ASCII characters py_isspace accepts (space, \t..\r, \x1c..\x1f). No character's
// str.lower() context (the final-sigma rule) reaches across one of them, so texts may be lowercased
// piecewise between them.
inline bool is_ascii_space(char c) { return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F); }
std::string u32_to_utf8(std::u32string_view s);
// 3 when the UTF-8 at s[i] encodes General Punctuation U+2010..U+2027 or U+2030..U+205E (dashes,
// curly quotes, ellipsis, primes, ...), else 0. These are caseless (str.lower() keeps them) and
// neither whitespace nor `\w`, so text made of them and ASCII is lowered, split and classified
// byte by byte exactly like ASCII text (it holds no sigma, so no lowering context either).
inline size_t caseless_punctuation_len(std::string_view s, size_t i) {
  if (i + 3 > s.size() || static_cast<unsigned char>(s[i]) != 0xE2) return 0;
  const auto b1 = static_cast<unsigned char>(s[i + 1]), b2 = static_cast<unsigned char>(s[i + 2]);
  if (b1 == 0x80) return (b2 >= 0x90 && b2 <= 0xA7) || (b2 >= 0xB0 && b2 <= 0xBF) ? 3 : 0;
  if (b1 == 0x81) return b2 >= 0x80 && b2 <= 0x9E ? 3 : 0;
  return 0;
}
// True when every non-ASCII character of `s` is caseless punctuation (above).
bool is_ascii_or_caseless_punctuation(std::string_view s);

// Python str.lower(): may change the length ("İ" -> "i̇"). ASCII-only input takes a fast path.
std::u32string py_lower(std::u32string_view s);

// Python str.isspace() for one code point: bidirectional class WS, B or S, or category Zs. True for
// U+001C..U+001F, U+0085, U+2028, U+3000; false for U+200B.
bool py_isspace(char32_t c);
// Python re `\w` on str: alphanumeric (letters L*, any character with a numeric type) or '_'.
// Combining marks (Mn) are not word characters.
bool py_is_word(char32_t c);
// Python re `\d` on str: a Unicode decimal digit (Nd), e.g. full-width '１' and Arabic-Indic '١'.
bool py_is_decimal(char32_t c);

// Python str.split() with no argument: runs of py_isspace characters separate fields; no empty fields.
std::vector<std::u32string> py_split(std::u32string_view s);
// Python text.lower().split() on UTF-8, as UTF-8 tokens. Lowering is local to the pieces between
// ASCII whitespace, so an ASCII piece (or one with caseless punctuation) is one token lowercased
// byte by byte; other pieces are decoded (invalid bytes as U+FFFD), lowered and split on code
// points. `out` is cleared first.
void py_lower_split_utf8(std::string_view s, TokenList& out);
// py_split on UTF-8 text, appending views into `s` to `out`; ASCII bytes are classified directly,
// other code points decoded one at a time (as utf8_to_u32 would).
void py_split_utf8(std::string_view s, std::vector<std::string_view>& out);

}  // namespace ctx::text
