// SQuAD v1.1 official exact match and F1 (evaluate-v1.1.py): normalize_answer (text/answer_normalize.h),
// EM = normalised strings equal, F1 = token_f1; metric_max_over_ground_truths takes the max of each
// over the references separately. Per-question values are 0..1 (not x100).
// Keys: exact_match, f1 (+ "@refN" with several references). Also the plugin `squad_em_f1`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ctx {

bool squad_exact_match(std::string_view prediction, std::string_view gold);
double squad_f1(std::string_view prediction, std::string_view gold);

}  // namespace ctx
