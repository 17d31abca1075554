// Helpers for the dataset tests: load a dataset spec through the builtin catalog, write files
// (error_of comes from tests/support/error_of.h).
#pragma once

#include <fstream>
#include <string>

#include "core/base/error.h"
#include "datasets/dataset.h"
#include "plugins/register_all.h"
#include "tests/support/error_of.h"
#include "tests/support/test_paths.h"

namespace ctx::test {

// Loads `spec` with root=<shared>/datasets appended (unless the spec names a root itself).
inline LoadedDataset load_dataset(std::string spec, const Tokenizer* tokenizer = nullptr) {
  if (spec.find("root=") == std::string::npos)
    spec.append(spec.find(':') == std::string::npos ? ":" : ",").append("root=").append(shared_path("datasets"));
  LoadOptions options;
  options.tokenizer = tokenizer;
  return builtin_catalog().dataset.create(spec)->load(options);
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace ctx::test
