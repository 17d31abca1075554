// Reading a choice letter out of generated text. Pure; thread-safe.
#pragma once

#include <optional>
#include <string_view>

namespace ctx::data {

// LongBench v2 (pred.py extract_answer): asterisks removed, then the first "The correct answer is (X)"
// or, failing that, "The correct answer is X", X in A-D. nullopt if neither occurs.
std::optional<char> extract_longbench_v2_answer(std::string_view response);

// MMLU generation mode: the LongBench v2 phrases, then the first "answer is X" / "Answer: X" (also
// lower-case "answer"; X an upper-case A-D, optionally in parentheses), then a reply that starts with
// the letter alone ("B", "B.", "(B)", "B) ...", "B" and a line break; not "A lesion ...").
// nullopt if none applies.
std::optional<char> extract_mmlu_letter(std::string_view response);

// LongBench v1 post-processing for trec, triviaqa, samsum and lsht: leading newlines dropped, then
// the text up to the first newline.
std::string_view first_line(std::string_view response);

}  // namespace ctx::data
