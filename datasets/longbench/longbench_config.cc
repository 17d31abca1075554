#include "datasets/longbench/longbench_config.h"

#include <array>
#include <map>

#include "core/base/error.h"
#include "datasets/io/json_records.h"
#include "datasets/io/text_source.h"

namespace ctx::data {

namespace {

nlohmann::json entry(const nlohmann::json& doc, const std::string& file, const std::string& task) {
  if (!doc.is_object()) fail(file, ": expected a JSON object of tasks");
  auto it = doc.find(task);
  if (it == doc.end()) {
    std::string known;
    for (const auto& [k, v] : doc.items()) known += (known.empty() ? "" : ", ") + k;
    fail(file, ": no task '", task, "' (tasks: ", known, ")");
  }
  return *it;
}

bool one_of(const std::string& task, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (task == n) return true;
  return false;
}

}  // namespace

std::string longbench_prompt_template(const std::string& config_dir, const std::string& task) {
  const std::string file = config_dir + "/dataset2prompt.json";
  const nlohmann::json v = entry(read_json_document(file), file, task);
  if (!v.is_string()) fail(file, ": the template of '", task, "' is not a string");
  return v.get<std::string>();
}

int64_t longbench_max_new_tokens(const std::string& config_dir, const std::string& task) {
  const std::string file = config_dir + "/dataset2maxlen.json";
  const nlohmann::json v = entry(read_json_document(file), file, task);
  if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(file, ": the max length of '", task, "' is not a positive int");
  return v.get<int64_t>();
}

std::string longbench_v2_template(const std::string& config_dir, const std::string& name) {
  return read_text_file(config_dir + "/v2_prompts/" + name + ".txt");
}

bool longbench_first_line_task(const std::string& task) { return one_of(task, {"trec", "triviaqa", "samsum", "lsht"}); }

bool longbench_no_chat_task(const std::string& task) {
  return one_of(task, {"trec", "triviaqa", "samsum", "lsht", "lcc", "repobench-p"});
}

std::string longbench_metric_of(const std::string& task) {
  static const std::map<std::string, std::string> kMetric = {
      {"narrativeqa", "qa_f1_score"},      {"qasper", "qa_f1_score"},          {"multifieldqa_en", "qa_f1_score"},
      {"multifieldqa_zh", "qa_f1_zh_score"}, {"hotpotqa", "qa_f1_score"},      {"2wikimqa", "qa_f1_score"},
      {"musique", "qa_f1_score"},          {"dureader", "rouge_zh_score"},     {"gov_report", "rouge_score"},
      {"qmsum", "rouge_score"},            {"multi_news", "rouge_score"},      {"vcsum", "rouge_zh_score"},
      {"trec", "classification_score"},    {"triviaqa", "qa_f1_score"},        {"samsum", "rouge_score"},
      {"lsht", "classification_score"},    {"passage_retrieval_en", "retrieval_score"},
      {"passage_count", "count_score"},    {"passage_retrieval_zh", "retrieval_zh_score"},
      {"lcc", "code_sim_score"},           {"repobench-p", "code_sim_score"}};
  auto it = kMetric.find(task);
  if (it == kMetric.end()) fail("unknown LongBench task '", task, "' (no scorer in LongBench's dataset2metric)");
  return it->second;
}

}  // namespace ctx::data
