#include "datasets/longbench/longbench_v1.h"

#include "core/base/error.h"
#include "datasets/io/json_records.h"
#include "datasets/longbench/longbench_config.h"
#include "datasets/prompt_template.h"

namespace ctx::data {

LongBenchTask LongBenchTask::load(const std::string& config_dir, const std::string& name) {
  LongBenchTask t;
  t.name = name;
  t.prompt_template = longbench_prompt_template(config_dir, name);
  t.max_new_tokens = longbench_max_new_tokens(config_dir, name);
  longbench_metric_of(name);  // an unknown task fails here, before any file is read
  return t;
}

Sample longbench_v1_sample(const nlohmann::json& rec, const LongBenchTask& task, const std::string& where) {
  Sample s;
  s.id = json_nonempty_string(rec, "_id", where);
  s.context = json_string(rec, "context", where);
  s.question = json_string(rec, "input", where);  // empty for summarisation tasks
  s.references = json_string_list(rec, "answers", where);
  s.prompt = format_named(task.prompt_template, {{"context", s.context}, {"input", s.question}}, where);
  s.max_new_tokens = task.max_new_tokens;
  s.metric = "longbench:metric=" + longbench_metric_of(task.name);
  s.metric_options = nlohmann::json::object();
  if (auto it = rec.find("all_classes"); it != rec.end() && !it->is_null()) {
    s.metric_options["all_classes"] = json_string_list(rec, "all_classes", where);
  }
  if (longbench_first_line_task(task.name)) {
    s.extraction = "first_line";
    s.metric_options["first_line_only"] = true;
  }
  if (auto d = json_optional_string(rec, "dataset", where); d && *d != task.name)
    fail(where, ": record of dataset '", *d, "' in a file read as task '", task.name, "'");
  if (auto it = rec.find("length"); it != rec.end()) {
    if (!it->is_number_integer()) fail(where, ": field \"length\" must be an int, got ", it->type_name());
    s.meta["length"] = std::to_string(it->get<int64_t>());
  }
  if (auto l = json_optional_string(rec, "language", where)) s.meta["language"] = *l;
  s.meta["task"] = task.name;
  s.meta["chat"] = longbench_no_chat_task(task.name) ? "false" : "true";
  s.source = where;
  return s;
}

LoadedDataset load_longbench_v1_file(const std::string& file, const LongBenchTask& task, const CommonParams& common,
                                     const LoadOptions& options) {
  JsonLinesReader reader(file);
  SampleCollector out(common, options);
  while (out.step([&]() -> std::optional<Sample> {
    nlohmann::json rec;
    if (!reader.next(rec)) return std::nullopt;
    return longbench_v1_sample(rec, task, reader.where());
  })) {
  }
  return out.take();
}

}  // namespace ctx::data
