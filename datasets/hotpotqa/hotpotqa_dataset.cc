// The `hotpotqa` dataset. setting=distractor: the official JSON array {_id, question, answer,
// supporting_facts [[title, sent_id]], context [[title, [sentences]]], type, level}; the context
// paragraphs become "Passage i:\n<title>\n<sentences joined>" lines, filled into LongBench's hotpotqa
// template (dataset2prompt.json). setting=closed_book: the question alone, from either the official
// file or the simplified [{question, answer, type}] file (ids "hotpot_dev_<index>" when it has no _id).
#include "core/base/error.h"
#include "datasets/io/json_records.h"
#include "datasets/longbench/longbench_config.h"
#include "datasets/prompt_template.h"
#include "datasets/register_dataset.h"

namespace ctx {
namespace {

using nlohmann::json;

constexpr const char* kClosedBookTemplate =
    "Answer the question. Only give me the answer and do not output any other words.\n\nQuestion: {input}\nAnswer:";

// "Passage 1:\n<title>\n<sentences>\nPassage 2:..." from the official context list.
std::string assemble_context(const json& rec, const std::string& where) {
  auto it = rec.find("context");
  if (it == rec.end()) fail(where, ": missing field \"context\" (the simplified file has none: use setting=closed_book)");
  if (!it->is_array() || it->empty()) fail(where, ": field \"context\" must be a non-empty list of [title, [sentences]]");
  std::string out;
  size_t i = 0;
  for (const auto& para : *it) {
    if (!para.is_array() || para.size() != 2 || !para[0].is_string() || !para[1].is_array())
      fail(where, ": context entry ", i, " is not [title, [sentences]]");
    std::string text;
    for (const auto& sent : para[1]) {
      if (!sent.is_string()) fail(where, ": context entry ", i, " has a sentence that is not a string");
      text += sent.get<std::string>();
    }
    out += str_cat(i ? "\n" : "", "Passage ", i + 1, ":\n", para[0].get<std::string>(), "\n", text);
    ++i;
  }
  return out;
}

std::string supporting_facts(const json& rec, const std::string& where) {
  auto it = rec.find("supporting_facts");
  if (it == rec.end()) fail(where, ": missing field \"supporting_facts\"");
  if (!it->is_array()) fail(where, ": field \"supporting_facts\" must be a list of [title, sent_id]");
  std::string out;
  for (const auto& f : *it) {
    if (!f.is_array() || f.size() != 2 || !f[0].is_string() || !f[1].is_number_integer())
      fail(where, ": a supporting fact is not [title, sent_id]");
    out += str_cat(out.empty() ? "" : "; ", f[0].get<std::string>(), "#", f[1].get<int64_t>());
  }
  return out;
}

class HotpotQaDataset final : public DatasetPlugin {
 public:
  explicit HotpotQaDataset(const Params& p)
      : common_(p), setting_(p.get_string("setting")), config_(p.get_string("config")) {}
  std::string_view name() const override { return "hotpotqa"; }

  LoadedDataset load(const LoadOptions& options) const override {
    const bool distractor = setting_ == "distractor";
    const std::string tmpl =
        distractor ? data::longbench_prompt_template(config_.empty() ? common_.root + "/longbench/config" : config_,
                                                     "hotpotqa")
                   : kClosedBookTemplate;
    data::JsonArrayReader reader(common_.file(distractor ? "hotpotqa/hotpot_dev_distractor_v1.first53.json"
                                                         : "hotpotqa/hotpot_dev_v1_simplified.json"));
    data::SampleCollector out(common_, options);
    while (out.step([&]() -> std::optional<Sample> {
      json rec;
      if (!reader.next(rec)) return std::nullopt;
      const std::string where = reader.where();
      Sample s;
      auto id = data::json_optional_string(rec, "_id", where);
      s.id = id ? *id : str_cat("hotpot_dev_", reader.index());
      s.question = data::json_nonempty_string(rec, "question", where);
      s.references = {data::json_nonempty_string(rec, "answer", where)};
      s.meta["type"] = data::json_nonempty_string(rec, "type", where);
      if (auto level = data::json_optional_string(rec, "level", where)) s.meta["level"] = *level;
      if (distractor) {
        s.context = assemble_context(rec, where);
        s.meta["supporting_facts"] = supporting_facts(rec, where);
      }
      s.prompt = data::format_named(tmpl, {{"context", s.context}, {"input", s.question}}, where);
      s.max_new_tokens = 32;  // LongBench's dataset2maxlen for hotpotqa
      s.metric = "hotpot_em_f1";
      s.source = where;
      return s;
    })) {
    }
    return out.take();
  }

 private:
  data::CommonParams common_;
  std::string setting_, config_;
};

}  // namespace

void register_hotpotqa(Catalog& catalog) {
  add_dataset<HotpotQaDataset>(
      catalog, "hotpotqa", "HotpotQA dev: official JSON with distractor paragraphs, or closed-book questions",
      {ParamSpec::Choice("setting", "distractor", {"distractor", "closed_book"},
                         "distractor: context paragraphs in the prompt; closed_book: the question alone"),
       ParamSpec::String("config", "", "folder with LongBench's dataset2prompt.json (default: root/longbench/config)")});
}

}  // namespace ctx
