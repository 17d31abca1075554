#include "eval/text/rouge_tokenizer.h"

#include <array>

#include "eval/text/interner.h"
#include "eval/text/porter_stemmer.h"
#include "eval/text/unicode.h"

namespace ctx::text {
namespace {

char token_byte(char32_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return char(c);
  return c == '\n' ? '\n' : ' ';
}

// token_byte of every lowered ASCII byte.
const std::array<char, 128> kAsciiTokenByte = [] {
  std::array<char, 128> t{};
  for (char32_t c = 0; c < 128; ++c) t[c] = token_byte(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return t;
}();

}  // namespace

void rouge_tokenize(std::string_view utf8, bool use_stemmer, RougeTokens& out) {
  out.buf.clear();
  out.tokens.clear();
  out.sentence_ends.clear();
  if (is_ascii(utf8)) {  // one byte per byte: written in place
    out.buf.resize(utf8.size());
    for (size_t i = 0; i < utf8.size(); ++i) out.buf[i] = kAsciiTokenByte[size_t(utf8[i])];
  } else {
    out.buf.reserve(utf8.size());
    for (size_t i = 0, len = 1; i < utf8.size(); i += len) {
      const char c = utf8[i];
      if (static_cast<unsigned char>(c) < 0x80) {
        len = 1;
        out.buf.push_back(kAsciiTokenByte[size_t(c)]);
        continue;
      }
      if ((len = caseless_punctuation_len(utf8, i)) != 0) {  // one code point, kept by lowering
        out.buf.push_back(' ');
        continue;
      }
      // Lowercased alone: only the final sigma depends on context, and no sigma is a token byte.
      const char32_t cp = decode_utf8_at(utf8, i, len);
      for (char32_t l : py_lower(std::u32string_view(&cp, 1))) out.buf.push_back(token_byte(l));
    }
  }
  const std::string_view b = out.buf;
  size_t line_start = 0;
  for (size_t i = 0; i <= b.size();) {
    if (i == b.size() || b[i] == '\n') {
      if (i > line_start) out.sentence_ends.push_back(uint32_t(out.tokens.size()));
      line_start = ++i;
      continue;
    }
    if (b[i] == ' ') {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < b.size() && b[j] != ' ' && b[j] != '\n') ++j;
    const std::string_view tok = b.substr(i, j - i);
    out.tokens.push_back(use_stemmer && tok.size() > 3 ? porter_stem_memo(tok) : tok);
    i = j;
  }
}

std::vector<std::string> rouge_tokenize(std::string_view utf8, bool use_stemmer) {
  porter_stem_memo_trim();
  RougeTokens t;
  rouge_tokenize(utf8, use_stemmer, t);
  return {t.tokens.begin(), t.tokens.end()};
}

}  // namespace ctx::text
