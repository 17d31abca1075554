// The `longbench_v2` dataset: <root>/longbench/v2/longbench_v2_short.jsonl.gz by default (or `path`,
// any v2 JSON Lines file, gzip or plain), templates from <root>/longbench/config/v2_prompts.
#include "datasets/common_params.h"
#include "datasets/io/json_records.h"
#include "datasets/longbench/longbench_config.h"
#include "datasets/longbench/longbench_v2.h"
#include "datasets/register_dataset.h"

namespace ctx {
namespace {

class LongBenchV2Dataset final : public DatasetPlugin {
 public:
  explicit LongBenchV2Dataset(const Params& p)
      : common_(p), template_(p.get_string("template")), config_(p.get_string("config")) {}
  std::string_view name() const override { return "longbench_v2"; }

  LoadedDataset load(const LoadOptions& options) const override {
    const std::string config = config_.empty() ? common_.root + "/longbench/config" : config_;
    const std::string tmpl = data::longbench_v2_template(config, template_);
    data::JsonLinesReader reader(common_.file("longbench/v2/longbench_v2_short.jsonl.gz"));
    data::SampleCollector out(common_, options);
    while (out.step([&]() -> std::optional<Sample> {
      nlohmann::json rec;
      if (!reader.next(rec)) return std::nullopt;
      return data::longbench_v2_sample(rec, tmpl, template_, reader.where());
    })) {
    }
    return out.take();
  }

 private:
  data::CommonParams common_;
  std::string template_, config_;
};

}  // namespace

void register_longbench_v2(Catalog& catalog) {
  add_dataset<LongBenchV2Dataset>(
      catalog, "longbench_v2", "LongBench v2 multiple choice (official v2_prompts templates, answer extraction)",
      {ParamSpec::Choice("template", "0shot", {"0shot", "0shot_cot", "0shot_no_context"},
                         "v2_prompts template (0shot_no_context for the questions-only file)"),
       ParamSpec::String("config", "", "folder holding v2_prompts/ (default: root/longbench/config)")});
}

}  // namespace ctx
