// Locations of shared fixtures for tests. The environment variable CTXLAB_SHARED_DIR overrides the
// folder configured at build time (../shared beside the repository by default).
#pragma once

#include <string>

namespace ctx::test {

// Absolute path of `rel` inside the shared folder, e.g. shared_path("fixtures/hf/llama").
std::string shared_path(const std::string& rel);

// A fresh empty temporary directory for this test process (removed at exit).
std::string temp_dir();

}  // namespace ctx::test
