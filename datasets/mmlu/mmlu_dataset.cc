// The `mmlu` dataset: headerless per-subject CSVs (question, A, B, C, D, answer letter) under
// <root>/mmlu/{dev,val,test}/<subject>_<split>.csv (or `path` = that mmlu folder).
#include <algorithm>
#include <filesystem>

#include "core/base/error.h"
#include "datasets/io/csv_reader.h"
#include "datasets/mmlu/mmlu_prompt.h"
#include "datasets/prompt_template.h"
#include "datasets/register_dataset.h"

namespace ctx {
namespace {

using data::CsvReader;
using data::CsvRecord;
using data::MmluRow;

MmluRow parse_row(const CsvRecord& r, const std::string& file) {
  const std::string where = str_cat(file, ":", r.line);
  if (r.fields.size() != 6) fail(where, ": expected 6 fields (question, A, B, C, D, answer), got ", r.fields.size());
  MmluRow row;
  row.question = r.fields[0];
  if (data::strip(row.question).empty()) fail(where, ": empty question");
  for (size_t i = 0; i < 4; ++i) row.choices[i] = r.fields[1 + i];
  const std::string_view ans = data::strip(r.fields[5]);
  if (ans.empty()) fail(where, ": empty answer");
  if (ans.size() != 1 || ans[0] < 'A' || ans[0] > 'D') fail(where, ": answer '", ans, "' is not one of A, B, C, D");
  row.answer = ans[0];
  return row;
}

class MmluDataset final : public DatasetPlugin {
 public:
  explicit MmluDataset(const Params& p)
      : common_(p),
        subjects_(p.get_string_list("subjects")),
        split_(p.get_string("split")),
        shots_(p.get_int("shots")),
        mode_(p.get_string("mode")),
        gen_tokens_(p.get_int("gen_tokens")) {}

  std::string_view name() const override { return "mmlu"; }

  LoadedDataset load(const LoadOptions& options) const override {
    const std::string dir = common_.file("mmlu");
    data::SampleCollector out(common_, options);
    for (const auto& subject : subjects(dir)) {
      std::vector<MmluRow> shots;
      if (shots_ > 0) {
        const std::string dev = str_cat(dir, "/dev/", subject, "_dev.csv");
        CsvReader reader(dev);
        for (CsvRecord r; int64_t(shots.size()) < shots_ && reader.next(r);) shots.push_back(parse_row(r, dev));
        if (int64_t(shots.size()) < shots_) fail(dev, ": has ", shots.size(), " rows, fewer than shots=", shots_);
      }
      const std::string file = str_cat(dir, "/", split_, "/", subject, "_", split_, ".csv");
      CsvReader reader(file);
      size_t index = 0;
      while (out.step([&]() -> std::optional<Sample> {
        CsvRecord r;
        if (!reader.next(r)) return std::nullopt;  // a CSV syntax error throws here, counted like a bad row
        const size_t i = index++;
        return make_sample(subject, shots, parse_row(r, file), str_cat(file, ":", r.line), i);
      })) {
      }
      if (out.full()) break;
    }
    return out.take();
  }

 private:
  std::vector<std::string> subjects(const std::string& dir) const {
    if (!subjects_.empty()) return subjects_;
    const std::string split_dir = str_cat(dir, "/", split_);
    const std::string suffix = "_" + split_ + ".csv";
    std::vector<std::string> all;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(split_dir, ec)) {
      const std::string f = e.path().filename().string();
      if (f.size() > suffix.size() && f.ends_with(suffix)) all.push_back(f.substr(0, f.size() - suffix.size()));
    }
    if (ec) fail("cannot list MMLU folder '", split_dir, "' (", ec.message(), ")");
    if (all.empty()) fail("no MMLU files *", suffix, " in '", split_dir, "'");
    std::sort(all.begin(), all.end());
    return all;
  }

  Sample make_sample(const std::string& subject, const std::vector<MmluRow>& shots, const MmluRow& row,
                     std::string source, size_t index) const {
    Sample s;
    s.id = str_cat(subject, "/", split_, "/", index);
    s.prompt = data::mmlu_prompt(subject, shots, row);
    s.question = std::string(data::strip(row.question));
    s.choices.assign(row.choices.begin(), row.choices.end());
    s.references = {std::string(1, row.answer)};
    s.gold_index = row.answer - 'A';
    s.metric = "accuracy";
    if (mode_ == "loglikelihood") {
      s.scoring = "loglikelihood";
      s.continuations = {" A", " B", " C", " D"};
      s.max_new_tokens = 0;
    } else {
      s.scoring = "generate";
      s.extraction = "mmlu_letter";
      s.max_new_tokens = gen_tokens_;
    }
    s.meta["subject"] = subject;
    s.meta["split"] = split_;
    s.source = std::move(source);
    return s;
  }

  data::CommonParams common_;
  std::vector<std::string> subjects_;
  std::string split_;
  int64_t shots_;
  std::string mode_;
  int64_t gen_tokens_;
};

}  // namespace

void register_mmlu(Catalog& catalog) {
  add_dataset<MmluDataset>(
      catalog, "mmlu", "MMLU multiple choice (lm-eval-harness prompt; log-likelihood of ' A'..' D' or generation)",
      {ParamSpec::StringList("subjects", {}, "subjects such as [anatomy,virology] (default: every file of the split)"),
       ParamSpec::Choice("split", "test", {"test", "val", "dev"}, "which split to evaluate"),
       ParamSpec::Int("shots", 5, 0, 5, "few-shot examples: the first k rows of the subject's dev file"),
       ParamSpec::Choice("mode", "loglikelihood", {"loglikelihood", "generate"},
                         "score by log-likelihood of the letters, or generate and extract the letter"),
       ParamSpec::Int("gen_tokens", 32, 1, 4096, "max new tokens in generate mode")});
}

}  // namespace ctx
