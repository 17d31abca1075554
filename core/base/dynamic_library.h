// A shared library loaded with dlopen for the rest of the process's life, and typed lookups of its
// symbols: for the optional GPU libraries ctxlab does not link (cuBLAS: cuda/cublas_api.h; CUPTI:
// cuda/kernel_trace.h). Copyable (the handle is never closed).
#pragma once

#include <string>
#include <vector>

namespace ctx {

class DynamicLibrary {
 public:
  // The first of `paths` that dlopen loads. Throws ctx::Unsupported "WHAT: cannot load PATHS[0]:
  // dlerror()" when none does.
  static DynamicLibrary open(const std::vector<std::string>& paths, const std::string& what);

  // fn = the symbol, as fn's type. Throws ctx::Unsupported "WHAT: LIBRARY has no SYMBOL" when it is missing.
  template <class Fn>
  void bind(Fn*& fn, const char* symbol) const {
    fn = reinterpret_cast<Fn*>(find(symbol));
  }

 private:
  void* find(const char* symbol) const;
  void* handle_ = nullptr;
  std::string name_, what_;
};

}  // namespace ctx
