// MMLU prompts in lm-evaluation-harness's default `mmlu` task format:
//   The following are multiple choice questions (with answers) about {subject, '_' -> ' '}.\n\n
//   {k dev examples, each "<question>\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer: <letter>" followed by "\n\n"}
//   <question>\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:
// The question is stripped of surrounding whitespace, the choices are kept as they are; the dev
// examples are the first k rows of the subject's dev file. Pure; thread-safe.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace ctx::data {

struct MmluRow {
  std::string question;
  std::array<std::string, 4> choices;
  char answer = 'A';  // A-D
};

std::string mmlu_subject_header(const std::string& subject);
// "<question>\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:" (lm-eval doc_to_text).
std::string mmlu_question_text(const MmluRow& row);
std::string mmlu_prompt(const std::string& subject, const std::vector<MmluRow>& shots, const MmluRow& row);

}  // namespace ctx::data
