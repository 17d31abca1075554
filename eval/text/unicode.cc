#include "eval/text/unicode.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include "core/base/error.h"

namespace ctx::text {

char32_t decode_utf8_at(std::string_view s, size_t i, size_t& len_out) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  const unsigned char c = p[i];
  const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  bool ok = len > 0 && i + size_t(len) <= n;
  for (int k = 1; ok && k < len; ++k) {
    if ((p[i + size_t(k)] & 0xC0) != 0x80) ok = false;
    cp = (cp << 6) | (p[i + size_t(k)] & 0x3F);
  }
  len_out = ok ? size_t(len) : 1;
  return ok ? cp : char32_t(0xFFFD);
}

std::u32string utf8_to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0, len = 0; i < s.size(); i += len) out.push_back(decode_utf8_at(s, i, len));
  return out;
}

std::string u32_to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(char(c));
    } else if (c < 0x800) {
      out.push_back(char(0xC0 | (c >> 6)));
      out.push_back(char(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(char(0xE0 | (c >> 12)));
      out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(char(0x80 | (c & 0x3F)));
    } else {
      out.push_back(char(0xF0 | (c >> 18)));
      out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(char(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool is_ascii_or_caseless_punctuation(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
    } else {
      const size_t len = caseless_punctuation_len(s, i);
      if (len == 0) return false;
      i += len;
    }
  }
  return true;
}

std::u32string py_lower(std::u32string_view s) {
  bool ascii = true;
  for (char32_t c : s) ascii = ascii && c < 0x80;
  if (ascii) {
    std::u32string out(s);
    for (auto& c : out)
      if (c >= 'A' && c <= 'Z') c += 32;
    return out;
  }
  // Full lowercasing needs context (final sigma), so the whole string goes through ICU in UTF-16.
  std::u16string u16;
  u16.reserve(s.size() + 8);
  for (char32_t c : s) {
    if (c >= 0x10000) {
      u16.push_back(char16_t(0xD800 + ((c - 0x10000) >> 10)));
      u16.push_back(char16_t(0xDC00 + ((c - 0x10000) & 0x3FF)));
    } else {
      u16.push_back(char16_t(c));
    }
  }
  std::u16string lowered(u16.size() * 3 + 8, u'\0');
  UErrorCode status = U_ZERO_ERROR;
  const int32_t len = u_strToLower(reinterpret_cast<UChar*>(lowered.data()), int32_t(lowered.size()),
                                   reinterpret_cast<const UChar*>(u16.data()), int32_t(u16.size()), "", &status);
  CTX_CHECK(U_SUCCESS(status), "u_strToLower failed: ", u_errorName(status));
  std::u32string out;
  out.reserve(size_t(len));
  for (int32_t i = 0; i < len; ++i) {
    char32_t c = lowered[size_t(i)];
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < len) {
      const char32_t lo = lowered[size_t(i) + 1];
      if (lo >= 0xDC00 && lo < 0xE000) {
        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
        ++i;
      }
    }
    out.push_back(c);
  }
  return out;
}

bool py_isspace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  const auto dir = u_charDirection(UChar32(c));
  return dir == U_WHITE_SPACE_NEUTRAL || dir == U_BLOCK_SEPARATOR || dir == U_SEGMENT_SEPARATOR ||
         u_charType(UChar32(c)) == U_SPACE_SEPARATOR;
}

bool py_is_word(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  const uint32_t mask = U_MASK(u_charType(UChar32(c)));
  if (mask & (U_GC_L_MASK)) return true;
  return u_getIntPropertyValue(UChar32(c), UCHAR_NUMERIC_TYPE) != U_NT_NONE;
}

bool py_is_decimal(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return u_charType(UChar32(c)) == U_DECIMAL_DIGIT_NUMBER;
}

std::vector<std::u32string> py_split(std::u32string_view s) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && py_isspace(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !py_isspace(s[j])) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

namespace {

// Byte length of the whitespace character starting at s[i], or 0 when it is not whitespace.
size_t space_len(std::string_view s, size_t i) {
  size_t len = 1;
  if (static_cast<unsigned char>(s[i]) < 0x80) return is_ascii_space(s[i]) ? 1 : 0;
  return py_isspace(decode_utf8_at(s, i, len)) ? len : 0;
}

size_t char_len(std::string_view s, size_t i) {
  size_t len = 1;
  if (static_cast<unsigned char>(s[i]) >= 0x80) decode_utf8_at(s, i, len);
  return len;
}

}  // namespace

void py_split_utf8(std::string_view s, std::vector<std::string_view>& out) {
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size()) {
      const size_t k = space_len(s, i);
      if (k == 0) break;
      i += k;
    }
    size_t j = i;
    while (j < s.size() && space_len(s, j) == 0) j += char_len(s, j);
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
}

void py_lower_split_utf8(std::string_view s, TokenList& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    while (i < s.size() && is_ascii_space(s[i])) ++i;
    size_t j = i;
    unsigned char high = 0;  // the OR of the piece's bytes: ASCII below 0x80
    for (; j < s.size() && !is_ascii_space(s[j]); ++j) high |= static_cast<unsigned char>(s[j]);
    if (j > i && (high < 0x80 || is_ascii_or_caseless_punctuation(s.substr(i, j - i)))) {
      std::string& b = out.bytes();
      const size_t start = b.size();
      b.append(s.substr(i, j - i));
      for (size_t k = start; k < b.size(); ++k)
        if (b[k] >= 'A' && b[k] <= 'Z') b[k] = char(b[k] + 32);
      out.end_token();
    } else if (j > i) {
      for (const auto& t : py_split(py_lower(utf8_to_u32(s.substr(i, j - i))))) out.push_back(u32_to_utf8(t));
    }
    i = j;
  }
}

}  // namespace ctx::text
