// Locations of shared fixtures for tests. CTXLAB_SHARED_DIR (set by CTest) overrides the default
// ../shared beside the repository.
#pragma once

#include <string>

namespace ctx::test {

// Absolute path of `rel` inside the shared folder, e.g. shared_path("fixtures/hf/llama").
std::string shared_path(const std::string& rel);

// A fresh empty temporary directory for this test process (removed at exit).
std::string temp_dir();

}  // namespace ctx::test
