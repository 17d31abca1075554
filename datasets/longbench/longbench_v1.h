// LongBench v1 task files (JSON Lines {input, context, answers[], length, dataset, language,
// all_classes, _id}, plain or gzip) turned into samples: the prompt is the task's template from
// dataset2prompt.json filled with {context} and {input} (as pred.py's prompt_format.format), max new
// tokens from dataset2maxlen.json, the scorer of eval.py's dataset2metric, and first-line
// post-processing for trec/triviaqa/samsum/lsht. No chat template is applied (meta "chat" says
// whether pred.py would apply the model's). Pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "datasets/common_params.h"
#include "datasets/dataset.h"

namespace ctx::data {

struct LongBenchTask {
  std::string name;  // e.g. multi_news
  std::string prompt_template;
  int64_t max_new_tokens = 0;
  // Reads the task's entries from <config_dir>/dataset2prompt.json and dataset2maxlen.json.
  static LongBenchTask load(const std::string& config_dir, const std::string& name);
};

// One record; `where` ("FILE:LINE") names it in errors (missing field, empty answers, ...).
Sample longbench_v1_sample(const nlohmann::json& record, const LongBenchTask& task, const std::string& where);

// Every record of `file` with the collector's rules (limit, skip_bad, max_tokens).
LoadedDataset load_longbench_v1_file(const std::string& file, const LongBenchTask& task, const CommonParams& common,
                                     const LoadOptions& options);

}  // namespace ctx::data
