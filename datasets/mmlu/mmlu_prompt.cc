#include "datasets/mmlu/mmlu_prompt.h"

#include <algorithm>

#include "datasets/prompt_template.h"

namespace ctx::data {

std::string mmlu_subject_header(const std::string& subject) {
  std::string name = subject;
  std::replace(name.begin(), name.end(), '_', ' ');
  return "The following are multiple choice questions (with answers) about " + name + ".\n\n";
}

std::string mmlu_question_text(const MmluRow& row) {
  std::string s(strip(row.question));
  for (int i = 0; i < 4; ++i) s += std::string("\n") + char('A' + i) + ". " + row.choices[size_t(i)];
  return s + "\nAnswer:";
}

std::string mmlu_prompt(const std::string& subject, const std::vector<MmluRow>& shots, const MmluRow& row) {
  std::string s = mmlu_subject_header(subject);
  for (const auto& shot : shots) s += mmlu_question_text(shot) + " " + shot.answer + "\n\n";
  return s + mmlu_question_text(row);
}

}  // namespace ctx::data
