#include "datasets/answer_extraction.h"

#include <regex>
#include <string>

namespace ctx::data {

namespace {

std::optional<char> search(const std::string& text, const std::regex& re) {
  std::smatch m;
  if (std::regex_search(text, m, re)) return m.str(1)[0];
  return std::nullopt;
}

std::string without_asterisks(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '*') out.push_back(c);
  return out;
}

}  // namespace

std::optional<char> extract_longbench_v2_answer(std::string_view response) {
  static const std::regex paren(R"(The correct answer is \(([A-D])\))");
  static const std::regex bare(R"(The correct answer is ([A-D]))");
  const std::string text = without_asterisks(response);
  if (auto c = search(text, paren)) return c;
  return search(text, bare);
}

std::optional<char> extract_mmlu_letter(std::string_view response) {
  if (auto c = extract_longbench_v2_answer(response)) return c;
  static const std::regex phrase(R"([Aa]nswer(?: is|:)\s*\(?([A-D])\b)");
  // A letter alone: "B", "B.", "(B)", "B) ...", "B\n..." but not the article in "A lesion ...".
  static const std::regex lead(R"(^\s*\(?([A-D])(?:[.):]|\s*$|\s*\n))");
  const std::string text = without_asterisks(response);
  if (auto c = search(text, phrase)) return c;
  return search(text, lead);
}

std::string_view first_line(std::string_view response) {
  const size_t b = response.find_first_not_of('\n');
  if (b == std::string_view::npos) return {};
  response.remove_prefix(b);
  return response.substr(0, response.find('\n'));
}

}  // namespace ctx::data
