// LongBench v1 English scorers (THUDM/LongBench metrics.py + the scorer() of eval.py), per sample:
// * qa_f1_score: SQuAD normalize_answer + token F1 (no yes/no rule), 0 without overlap;
// * rouge_score: see longbench_rouge_l.h;
// * classification_score: classes that are substrings of the prediction, in all_classes order; then
//   the reference's in-place removal loop (a class that is a substring of, but not equal to, the gold
//   is removed, and the element after each removal is skipped); 1/len(list) if the gold is in it;
// * retrieval_score: the id N of "Paragraph N" in the gold; the share of Python `\d+` numbers in the
//   prediction (any Unicode decimal digits) equal to it; count_score: the same against the gold;
// * code_sim_score: the first line (after lstrip('\n'), split on '\n') without '`', '#' or "//", or
//   "" -> fuzz_ratio(line, gold)/100 (text/fuzz_ratio.h; `score` uses the difflib backend that
//   `pip install fuzzywuzzy` gives, `score_levenshtein` the python-Levenshtein backend).
// Plugin `longbench`: options "metric" (one of the six names, required), "all_classes",
// "first_line_only" (prediction.lstrip('\n').split('\n')[0] first, as eval.py for trec, triviaqa,
// samsum, lsht). Keys: score = max(0, max over references), "@refN" per reference; rouge_score adds
// score_unbounded_recursion, code_sim_score adds score_levenshtein.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ctx {

double longbench_qa_f1(std::string_view prediction, std::string_view gold);
double longbench_classification(std::string_view prediction, std::string_view gold,
                                const std::vector<std::string>& all_classes);
// Throws ctx::Error when the gold has no "Paragraph N" (the reference raises IndexError).
double longbench_retrieval(std::string_view prediction, std::string_view gold);
double longbench_count(std::string_view prediction, std::string_view gold);
double longbench_code_sim(std::string_view prediction, std::string_view gold, bool levenshtein_backend);

// The number LongBench reports for a task: Python round(100 * sum / n, 2); 0 for no samples.
// Python round(x, 2), exactly.
double round2(double x);
double longbench_task_score(const std::vector<double>& sample_scores);
// The average over tasks of their reported scores (LongBench's "Avg"), rounded to 2 decimals.
double longbench_average(const std::vector<double>& task_scores);

}  // namespace ctx
