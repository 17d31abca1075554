#include "core/base/dynamic_library.h"

#include <dlfcn.h>

#include "core/base/error.h"

namespace ctx {

DynamicLibrary DynamicLibrary::open(const std::vector<std::string>& paths, const std::string& what) {
  CTX_CHECK(!paths.empty(), "DynamicLibrary::open without a path");
  std::string first_error;
  for (const std::string& path : paths) {
    if (void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      DynamicLibrary lib;
      lib.handle_ = handle, lib.name_ = path, lib.what_ = what;
      return lib;
    }
    if (first_error.empty()) first_error = dlerror();
  }
  throw Unsupported(str_cat(what, ": cannot load ", paths.front(), ": ", first_error));
}

void* DynamicLibrary::find(const char* symbol) const {
  void* p = dlsym(handle_, symbol);
  if (!p) throw Unsupported(str_cat(what_, ": ", name_, " has no ", symbol));
  return p;
}

}  // namespace ctx
