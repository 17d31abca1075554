// Multiple-choice accuracy metrics.
// * LongBench v2 (THUDM/LongBench pred.py extract_answer + result.py): the response with every '*'
//   removed; the letter of the first "The correct answer is (X)", else of the first
//   "The correct answer is X" (X in A-D, case-sensitive); accuracy = extracted == gold. result.py's
//   table: overall, easy / hard (anything but "easy" is hard), short / medium / long (anything but
//   "short" or "medium" is long), each round(100 * sum / count, 1); with `compensated`, a response
//   without an extractable letter counts 0.25.
//   Plugin `longbench_v2`: keys accuracy, answered (1 when a letter was extracted) and, when the
//   case's options give "difficulty" / "length", accuracy_<easy|hard> and accuracy_<short|medium|long>
//   (so averaging each key over the cases that have it gives result.py's columns); option
//   "compensated" (bool). Several references: the maximum.
// * MMLU: the runner picks the letter (log-likelihood over the choices); the metric scores it:
//   acc = 1 when the prediction equals the gold letter after trimming ASCII whitespace
//   (case-sensitive). Plugin `mmlu`: key acc (max over references).
// Pure and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctx {

// The letter LongBench v2's extract_answer returns, or nullopt (Python None).
std::optional<char> longbench_v2_extract(std::string_view response);

struct LongBenchV2Item {
  bool correct = false;
  bool answered = true;  // a letter was extracted
  std::string difficulty, length;
};

struct LongBenchV2Table {
  // Percentages rounded to one decimal as result.py prints them; NaN for a group without items
  // (where result.py divides by zero).
  double overall = 0, easy = 0, hard = 0, short_ = 0, medium = 0, long_ = 0;
};

LongBenchV2Table longbench_v2_table(const std::vector<LongBenchV2Item>& items, bool compensated);

// Python round(x, digits) for digits >= 0: the decimal rounding of the exact binary value.
double py_round(double x, int digits);

}  // namespace ctx
