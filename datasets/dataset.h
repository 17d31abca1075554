// The `dataset` plugin kind (DESIGN.md datasets/). A DatasetPlugin is created from a spec such as
// `mmlu:subjects=[anatomy],split=test,shots=5` or `longbench:task=multi_news,path=/data/x.jsonl`
// and loads Samples: the exact prompt a model sees, the parts it was built from, the references,
// and what the runner needs to score it (scoring mode, metric spec, max new tokens, answer
// extraction). Files are read where the spec points (`root`, default ../shared/datasets, or
// `path`), in their official formats, plain or gzip.
// Every dataset takes the common parameters of common_params.h (root, path, limit, skip_bad,
// max_tokens). A malformed row throws one ctx::Error "FILE:LINE: what is wrong", or with
// skip_bad=true is counted in LoadedDataset::skipped and left out.
// Instances are immutable; load() is const and thread-safe (each call reads the files anew).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ctx {

class Tokenizer;

// How a prompt was fitted to max_tokens. Token counts include BOS; -1 = not measured (no tokenizer).
struct TruncationRecord {
  int64_t original_tokens = -1;
  int64_t kept_tokens = -1;
  int64_t cut_tokens = 0;
  bool truncated() const { return cut_tokens > 0; }
};

struct Sample {
  std::string id;
  std::string prompt;                   // the full model input (after truncation)
  std::string context;                  // the document part, if any (before truncation)
  std::string question;
  std::vector<std::string> choices;     // multiple choice: the option texts, A first
  std::vector<std::string> references;  // gold answers (text); for multiple choice the gold letter
  // "loglikelihood": score by the log-likelihood of each continuation after the prompt (the gold
  // one is continuations[gold_index]); "generate": generate up to max_new_tokens and score the text.
  std::string scoring = "generate";
  std::vector<std::string> continuations;
  int64_t gold_index = -1;
  int64_t max_new_tokens = 0;
  std::string metric;      // a metric spec (`rouge`, `longbench:metric=rouge_score`) or "accuracy"
  nlohmann::json metric_options;  // per-case metric options (eval/metric.h), null if none
  std::string extraction;  // how to read the answer from generated text: "", "first_line", "mmlu_letter", "longbench_v2"
  std::map<std::string, std::string> meta;  // subject, type, level, difficulty, length, depth_percent, ...
  TruncationRecord truncation;
  std::string source;  // "FILE:LINE" (or "FILE: record N") the sample came from
};

struct LoadOptions {
  // Counts tokens for max_tokens and for token-length tasks (needle); may be null when neither is used.
  const Tokenizer* tokenizer = nullptr;
};

struct LoadedDataset {
  std::vector<Sample> samples;
  std::vector<std::string> skipped;  // one "FILE:LINE: why" per row left out (skip_bad=true)
};

class DatasetPlugin {
 public:
  virtual ~DatasetPlugin() = default;
  virtual std::string_view name() const = 0;
  // Reads and builds the samples. Throws ctx::Error for a missing file, a malformed row (unless
  // skip_bad) or max_tokens > 0 without a tokenizer.
  virtual LoadedDataset load(const LoadOptions& options) const = 0;
};

}  // namespace ctx
