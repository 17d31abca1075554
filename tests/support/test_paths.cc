#include "tests/support/test_paths.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace ctx::test {

std::string shared_path(const std::string& rel) {
  const char* env = std::getenv("CTXLAB_SHARED_DIR");
  std::filesystem::path base = env && *env ? env : CTXLAB_DEFAULT_SHARED_DIR;
  return (base / rel).string();
}

namespace {
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("ctxlab_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace

std::string temp_dir() {
  static TempDir dir;
  return dir.path.string();
}

}  // namespace ctx::test
