// Parameters every dataset plugin takes, and the steps every loader shares: where files are,
// how many samples, whether bad rows are skipped, and length control. Pure; thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/plugin/params.h"
#include "datasets/dataset.h"

namespace ctx::data {

// root (string, ../shared/datasets), path (string, "" = the dataset's default file under root),
// limit (int >= 0, 0 = all), skip_bad (bool), max_tokens (int >= 0, 0 = no limit): appended to a
// dataset's own schema.
ParamSchema with_common_params(ParamSchema own);

struct CommonParams {
  std::string root;
  std::string path;
  int64_t limit = 0;
  bool skip_bad = false;
  int64_t max_tokens = 0;
  explicit CommonParams(const Params& p);
  // `path` if given, else root + "/" + default_rel.
  std::string file(const std::string& default_rel) const;
};

// Collects samples with the common rules: a row that throws ctx::Error is rethrown, or recorded in
// `skipped` when skip_bad; stops after `limit` samples; applies max_tokens (middle truncation of the
// prompt, truncation.h) to every sample it accepts.
class SampleCollector {
 public:
  SampleCollector(const CommonParams& common, const LoadOptions& options);
  // Runs `next`, which reads one row and returns its sample, or nullopt at the end of the input.
  // Returns false at the end of the input or once `limit` samples are held, so that
  // `while (collector.step(next)) {}` reads a whole file.
  bool step(const std::function<std::optional<Sample>()>& next);
  bool full() const;
  LoadedDataset take() { return std::move(out_); }

 private:
  const CommonParams& common_;
  const LoadOptions& options_;
  LoadedDataset out_;
};

}  // namespace ctx::data
