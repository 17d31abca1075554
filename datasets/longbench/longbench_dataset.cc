// The `longbench` (v1) dataset: <root>/longbench/v1/<task>.jsonl (or .jsonl.gz, or `path`), with the
// official templates of <root>/longbench/config (or `config`).
#include <filesystem>

#include "datasets/longbench/longbench_v1.h"
#include "datasets/register_dataset.h"

namespace ctx {
namespace {

class LongBenchDataset final : public DatasetPlugin {
 public:
  explicit LongBenchDataset(const Params& p)
      : common_(p), task_(p.get_string("task")), config_(p.get_string("config")) {}
  std::string_view name() const override { return "longbench"; }

  LoadedDataset load(const LoadOptions& options) const override {
    const std::string config = config_.empty() ? common_.root + "/longbench/config" : config_;
    const auto task = data::LongBenchTask::load(config, task_);
    std::string file = common_.file("longbench/v1/" + task_ + ".jsonl");
    if (common_.path.empty() && !std::filesystem::exists(file) && std::filesystem::exists(file + ".gz")) file += ".gz";
    return data::load_longbench_v1_file(file, task, common_, options);
  }

 private:
  data::CommonParams common_;
  std::string task_, config_;
};

}  // namespace

void register_longbench_dataset(Catalog& catalog) {
  add_dataset<LongBenchDataset>(
      catalog, "longbench", "LongBench v1 task files (official JSONL; templates and max lengths from its config)",
      {ParamSpec::String("task", "multi_news", "task name as in dataset2prompt.json (narrativeqa, hotpotqa, ...)"),
       ParamSpec::String("config", "", "folder with dataset2prompt.json and dataset2maxlen.json (default: root/longbench/config)")});
}

}  // namespace ctx
