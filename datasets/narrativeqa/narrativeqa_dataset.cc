// The `narrativeqa` dataset.
// source=official: deepmind/narrativeqa's files under <root>/narrativeqa (or `path`): qaps.csv
// (document_id, set, question, answer1, answer2, ...), documents.csv (document_id, set, kind, ...,
// story_start, story_end), third_party/wikipedia/summaries.csv (document_id, set, summary, ...) and the
// stories tmp/<document_id>.content, cut from the first occurrence of story_start to the end of the
// last occurrence of story_end (inclusive). A story that is not valid UTF-8 is read as Latin-1
// (meta story_encoding). HTML stories are kept as they are.
// source=longbench: LongBench's narrativeqa.jsonl (<root>/longbench/v1/narrativeqa.jsonl or `path`).
// Both use LongBench's narrativeqa template and scorer (qa_f1_score over answer1 and answer2).
#include <filesystem>
#include <map>

#include "core/base/error.h"
#include "datasets/io/csv_reader.h"
#include "datasets/io/text_source.h"
#include "datasets/io/utf8.h"
#include "datasets/longbench/longbench_config.h"
#include "datasets/longbench/longbench_v1.h"
#include "datasets/prompt_template.h"
#include "datasets/register_dataset.h"

namespace ctx {
namespace {

using data::CsvReader;
using data::CsvRecord;

struct Document {
  std::string story_start, story_end, kind;
};

// document_id -> fields of documents.csv.
std::map<std::string, Document> read_documents(const std::string& file) {
  CsvReader reader(file);
  CsvRecord header, r;
  if (!reader.next(header)) fail(file, ": empty file (expected a header)");
  const auto col = data::csv_columns(header, {"document_id", "kind", "story_start", "story_end"}, file);
  std::map<std::string, Document> out;
  while (reader.next(r)) {
    if (r.fields.size() != header.fields.size())
      fail(file, ":", r.line, ": expected ", header.fields.size(), " fields, got ", r.fields.size());
    out[r.fields[col[0]]] = Document{r.fields[col[2]], r.fields[col[3]], r.fields[col[1]]};
  }
  return out;
}

// document_id -> summary text (summaries.csv).
std::map<std::string, std::string> read_summaries(const std::string& file) {
  CsvReader reader(file);
  CsvRecord header, r;
  if (!reader.next(header)) fail(file, ": empty file (expected a header)");
  const auto col = data::csv_columns(header, {"document_id", "summary"}, file);
  std::map<std::string, std::string> out;
  while (reader.next(r)) {
    if (r.fields.size() != header.fields.size())
      fail(file, ":", r.line, ": expected ", header.fields.size(), " fields, got ", r.fields.size());
    out[r.fields[col[0]]] = r.fields[col[1]];
  }
  return out;
}

class NarrativeQaDataset final : public DatasetPlugin {
 public:
  explicit NarrativeQaDataset(const Params& p)
      : common_(p),
        source_(p.get_string("source")),
        setting_(p.get_string("setting")),
        split_(p.get_string("split")),
        config_(p.get_string("config")) {}
  std::string_view name() const override { return "narrativeqa"; }

  LoadedDataset load(const LoadOptions& options) const override {
    const std::string config = config_.empty() ? common_.root + "/longbench/config" : config_;
    const auto task = data::LongBenchTask::load(config, "narrativeqa");
    if (source_ == "longbench")
      return data::load_longbench_v1_file(common_.file("longbench/v1/narrativeqa.jsonl"), task, common_, options);
    return load_official(task, options);
  }

 private:
  LoadedDataset load_official(const data::LongBenchTask& task, const LoadOptions& options) const {
    const std::string dir = common_.file("narrativeqa");
    const bool story = setting_ == "story";
    std::map<std::string, Document> docs;
    std::map<std::string, std::string> summaries;
    if (story) docs = read_documents(dir + "/documents.csv");
    else summaries = read_summaries(dir + "/third_party/wikipedia/summaries.csv");
    std::map<std::string, std::pair<std::string, std::string>> stories;  // id -> (text, encoding), read once

    const std::string qaps = dir + "/qaps.csv";
    CsvReader reader(qaps);
    CsvRecord header;
    if (!reader.next(header)) fail(qaps, ": empty file (expected a header)");
    const auto col = data::csv_columns(header, {"document_id", "set", "question", "answer1", "answer2"}, qaps);
    data::SampleCollector out(common_, options);
    size_t index = 0;
    while (out.step([&]() -> std::optional<Sample> {
      while (true) {
        CsvRecord r;
        if (!reader.next(r)) return std::nullopt;
        const std::string where = str_cat(qaps, ":", r.line);
        if (r.fields.size() != header.fields.size())
          fail(where, ": expected ", header.fields.size(), " fields, got ", r.fields.size());
        if (split_ != "all" && r.fields[col[1]] != split_) continue;
        Sample s;
        const std::string& doc_id = r.fields[col[0]];
        s.id = str_cat(doc_id, "/", index++);
        s.question = std::string(data::strip(r.fields[col[2]]));
        if (s.question.empty()) fail(where, ": empty question");
        for (size_t k : {col[3], col[4]}) {
          if (data::strip(r.fields[k]).empty()) fail(where, ": empty answer (", header.fields[k], ")");
          s.references.push_back(r.fields[k]);
        }
        if (story) {
          auto it = stories.find(doc_id);
          if (it == stories.end()) it = stories.emplace(doc_id, read_story(dir, doc_id, docs, where)).first;
          s.context = it->second.first;
          s.meta["story_encoding"] = it->second.second;
          s.meta["kind"] = docs[doc_id].kind;
        } else {
          auto it = summaries.find(doc_id);
          if (it == summaries.end()) fail(where, ": document ", doc_id, " has no summary in summaries.csv");
          s.context = it->second;
        }
        s.prompt = data::format_named(task.prompt_template, {{"context", s.context}, {"input", s.question}}, where);
        s.max_new_tokens = task.max_new_tokens;
        s.metric = "longbench:metric=qa_f1_score";
        s.meta["document_id"] = doc_id;
        s.meta["set"] = r.fields[col[1]];
        s.meta["setting"] = setting_;
        s.source = where;
        return s;
      }
    })) {
    }
    return out.take();
  }

  // (story text, "utf-8" | "latin-1").
  static std::pair<std::string, std::string> read_story(const std::string& dir, const std::string& id,
                                                        const std::map<std::string, Document>& docs,
                                                        const std::string& where) {
    auto d = docs.find(id);
    if (d == docs.end()) fail(where, ": document ", id, " is not in documents.csv");
    const std::string file = str_cat(dir, "/tmp/", id, ".content");
    if (!std::filesystem::exists(file)) fail(where, ": story file '", file, "' is missing");
    std::string text = data::read_text_file(file);
    std::string encoding = "utf-8";
    if (data::invalid_utf8_offset(text) != std::string_view::npos) {
      text = data::latin1_to_utf8(text);
      encoding = "latin-1";
    }
    const Document& doc = d->second;
    if (doc.story_start.empty() || doc.story_end.empty()) fail(where, ": document ", id, " has an empty story_start/story_end");
    const size_t begin = text.find(doc.story_start);
    if (begin == std::string::npos) fail(file, ": story_start of document ", id, " not found");
    const size_t end = text.rfind(doc.story_end);
    if (end == std::string::npos || end < begin) fail(file, ": story_end of document ", id, " not found after story_start");
    return {text.substr(begin, end + doc.story_end.size() - begin), encoding};
  }

  data::CommonParams common_;
  std::string source_, setting_, split_, config_;
};

}  // namespace

void register_narrativeqa(Catalog& catalog) {
  add_dataset<NarrativeQaDataset>(
      catalog, "narrativeqa", "NarrativeQA: official deepmind CSVs (summary or full story) or LongBench's narrativeqa.jsonl",
      {ParamSpec::Choice("source", "official", {"official", "longbench"}, "official CSVs or LongBench JSONL"),
       ParamSpec::Choice("setting", "summary", {"summary", "story"}, "official: answer from the summary or the story"),
       ParamSpec::Choice("split", "test", {"train", "valid", "test", "all"}, "official: the `set` column to keep"),
       ParamSpec::String("config", "", "folder with LongBench's dataset2prompt.json (default: root/longbench/config)")});
}

}  // namespace ctx
