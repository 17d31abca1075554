#include "datasets/prompt_template.h"

#include "core/base/error.h"

namespace ctx::data {

std::string format_named(std::string_view tmpl, const std::vector<std::pair<std::string, std::string>>& values,
                         std::string_view where) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    const char c = tmpl[i];
    if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {
      out.push_back(c);
      ++i;
      continue;
    }
    if (c == '}') fail(where, ": single '}' in template");
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    const size_t close = tmpl.find('}', i);
    if (close == std::string_view::npos) fail(where, ": unterminated '{' in template");
    const std::string_view name = tmpl.substr(i + 1, close - i - 1);
    bool found = false;
    for (const auto& [k, v] : values) {
      if (k == name) {
        out += v;
        found = true;
        break;
      }
    }
    if (!found) fail(where, ": template field {", name, "} has no value");
    i = close;
  }
  return out;
}

std::string substitute(std::string_view tmpl, const std::vector<std::pair<std::string, std::string>>& values) {
  std::string text(tmpl);
  for (const auto& [k, v] : values) {
    if (k.empty()) continue;
    std::string out;
    size_t from = 0;
    for (size_t at; (at = text.find(k, from)) != std::string::npos; from = at + k.size()) out.append(text, from, at - from) += v;
    out.append(text, from);
    text = std::move(out);
  }
  return text;
}

std::string_view strip(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace ctx::data
