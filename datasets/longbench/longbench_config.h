// LongBench's official configuration files (THUDM/LongBench config/): dataset2prompt.json (the
// prompt template of each task, Python format fields {context} and {input}), dataset2maxlen.json
// (max new tokens of each task) and the v2 templates (v2_prompts/<name>.txt, fields $DOC$, $Q$,
// $C_A$..$C_D$). Reads the files on each call; pure otherwise; thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace ctx::data {

// Throws ctx::Error naming the file when it is missing, malformed or has no entry for `task`.
std::string longbench_prompt_template(const std::string& config_dir, const std::string& task);
int64_t longbench_max_new_tokens(const std::string& config_dir, const std::string& task);
std::string longbench_v2_template(const std::string& config_dir, const std::string& name);

// Tasks whose predictions LongBench's eval.py cuts to the first line (trec, triviaqa, samsum, lsht).
bool longbench_first_line_task(const std::string& task);
// Tasks that pred.py feeds without the chat template (trec, triviaqa, samsum, lsht, lcc, repobench-p).
bool longbench_no_chat_task(const std::string& task);
// The scorer of `task` in LongBench's eval.py dataset2metric, as the `longbench` metric's choice
// (qa_f1_score, rouge_score, classification_score, ...); throws ctx::Error for an unknown task.
std::string longbench_metric_of(const std::string& task);

}  // namespace ctx::data
