// Prompt templates as the reference code fills them. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ctx::data {

// Python str.format with named fields only: "{name}" is replaced by its value, "{{" and "}}" are
// literal braces. An unknown or unterminated field throws ctx::Error naming `where`.
std::string format_named(std::string_view tmpl, const std::vector<std::pair<std::string, std::string>>& values,
                         std::string_view where);

// Python's chained str.replace: for each (key, value) in order, every occurrence of key in the text
// so far is replaced (so, as in LongBench v2's pred.py, a key inside an earlier value is replaced too).
std::string substitute(std::string_view tmpl, const std::vector<std::pair<std::string, std::string>>& values);

// Python str.strip() for ASCII whitespace (what the reference loaders apply to fields).
std::string_view strip(std::string_view s);

}  // namespace ctx::data
