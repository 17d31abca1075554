// LongBench v2: multiple choice over long contexts. Records are JSON Lines {_id, domain, sub_domain,
// difficulty, length, question, choice_A..choice_D, answer, context} (plain or gzip; the
// questions-only file has no context). The prompt is an official v2_prompts template with $DOC$,
// $Q$, $C_A$..$C_D$ replaced by the stripped fields in that order (pred.py). The model generates
// (128 new tokens, 1024 for chain of thought) and the answer is read with extract_answer's phrases
// (answer_extraction.h). Pure; thread-safe.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace ctx::data {

// `tmpl` is the template text, `template_name` its file stem (0shot, 0shot_cot, 0shot_no_context).
// Throws ctx::Error naming `where` for a missing or empty field, an answer outside A-D, or a
// template that needs $DOC$ for a record without context.
Sample longbench_v2_sample(const nlohmann::json& record, const std::string& tmpl, const std::string& template_name,
                           const std::string& where);

// Accuracy in percent as LongBench v2's result.py reports it: "overall", "easy", "hard", "short",
// "medium", "long" (a group without samples is left out). `answers[i]` is the extracted letter of
// samples[i] (nullopt = none found, counted wrong). Throws ctx::Error if the sizes differ.
std::map<std::string, double> longbench_v2_accuracy(const std::vector<Sample>& samples,
                                                    const std::vector<std::optional<char>>& answers);

}  // namespace ctx::data
