// core/base/dynamic_library.h on the C math library every Linux machine has: the first loadable path
// wins, a symbol binds with its type, and a missing library or symbol is ctx::Unsupported naming it.
#include "core/base/dynamic_library.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

namespace ctx {
namespace {

TEST(DynamicLibrary, LoadsTheFirstPathThatExistsAndBindsTypedSymbols) {
  const DynamicLibrary lib = DynamicLibrary::open({"libctxlab_no_such_library.so.1", "libm.so.6"}, "test");
  double (*cosine)(double) = nullptr;
  lib.bind(cosine, "cos");
  ASSERT_NE(cosine, nullptr);
  EXPECT_DOUBLE_EQ(cosine(0.0), 1.0);
}

TEST(DynamicLibrary, MissingLibrariesAndSymbolsAreUnsupported) {
  try {
    DynamicLibrary::open({"libctxlab_no_such_library.so.1", "libctxlab_nor_this.so.2"}, "kernel trace");
    FAIL() << "opened a library that does not exist";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("kernel trace: cannot load libctxlab_no_such_library.so.1"), std::string::npos)
        << e.what();
  }
  const DynamicLibrary lib = DynamicLibrary::open({"libm.so.6"}, "GPU engine");
  void (*missing)() = nullptr;
  try {
    lib.bind(missing, "ctxlab_no_such_symbol");
    FAIL() << "bound a symbol that does not exist";
  } catch (const Unsupported& e) {
    EXPECT_EQ(std::string(e.what()), "GPU engine: libm.so.6 has no ctxlab_no_such_symbol");
  }
}

}  // namespace
}  // namespace ctx
