#include "datasets/common_params.h"

#include "core/base/error.h"
#include "datasets/truncation.h"

namespace ctx::data {

ParamSchema with_common_params(ParamSchema own) {
  own.push_back(ParamSpec::String("root", "../shared/datasets", "folder holding the datasets (README layout)"));
  own.push_back(ParamSpec::String("path", "", "the data file or folder itself (default: under root)"));
  own.push_back(ParamSpec::Int("limit", 0, 0, std::nullopt, "at most this many samples (0 = all)"));
  own.push_back(ParamSpec::Bool("skip_bad", false, "leave malformed rows out and count them instead of failing"));
  own.push_back(ParamSpec::Int("max_tokens", 0, 0, std::nullopt,
                               "prompt budget in tokens incl. BOS; longer prompts lose their middle (0 = no limit)"));
  return own;
}

CommonParams::CommonParams(const Params& p)
    : root(p.get_string("root")),
      path(p.get_string("path")),
      limit(p.get_int("limit")),
      skip_bad(p.get_bool("skip_bad")),
      max_tokens(p.get_int("max_tokens")) {}

std::string CommonParams::file(const std::string& default_rel) const {
  return path.empty() ? root + "/" + default_rel : path;
}

SampleCollector::SampleCollector(const CommonParams& common, const LoadOptions& options)
    : common_(common), options_(options) {
  if (common_.max_tokens > 0 && !options_.tokenizer)
    fail("max_tokens=", common_.max_tokens, " needs a tokenizer to count tokens (e.g. --tokenizer PATH)");
}

bool SampleCollector::full() const { return common_.limit > 0 && int64_t(out_.samples.size()) >= common_.limit; }

bool SampleCollector::step(const std::function<std::optional<Sample>()>& next) {
  if (full()) return false;
  std::optional<Sample> got;
  try {
    got = next();
  } catch (const Error& e) {
    if (!common_.skip_bad) throw;
    out_.skipped.push_back(e.what());
    return true;
  }
  if (!got) return false;
  Sample& s = *got;
  if (options_.tokenizer) {
    TruncatedText t = middle_truncate(s.prompt, *options_.tokenizer, common_.max_tokens);
    s.prompt = std::move(t.text);
    s.truncation = t.record;
  }
  out_.samples.push_back(std::move(s));
  return !full();
}

}  // namespace ctx::data
