// Strict UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) for
// data files, whose rows must be rejected with their file and line rather than silently repaired.
// Pure and thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ctx::data {

// Byte offset of the first invalid sequence in `s`, or std::string_view::npos if `s` is valid.
size_t invalid_utf8_offset(std::string_view s);

// Bytes read as Latin-1 (ISO-8859-1), converted to UTF-8: for legacy story files that are not UTF-8.
std::string latin1_to_utf8(std::string_view s);

}  // namespace ctx::data
