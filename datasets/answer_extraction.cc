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
  static const std::regex phrase(R"((?:answer is|answer:)\s*\(?([A-D])\b)", std::regex::icase);
  static const std::regex lead(R"(^\s*\(?([A-D])(?:[.):]|\s|$))");
  const std::string text = without_asterisks(response);
  // icase would also accept a-d as the letter; check the captured letter's case.
  std::smatch m;
  if (std::regex_search(text, m, phrase) && m.str(1)[0] >= 'A' && m.str(1)[0] <= 'D') return m.str(1)[0];
  return search(text, lead);
}

std::string_view first_line(std::string_view response) {
  const size_t b = response.find_first_not_of('\n');
  if (b == std::string_view::npos) return {};
  response.remove_prefix(b);
  return response.substr(0, response.find('\n'));
}

}  // namespace ctx::data
