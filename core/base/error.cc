#include "core/base/error.h"

#include <cstdio>
#include <cstdlib>

namespace ctx {

void check_failed(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "ctxlab internal error: CTX_CHECK(%s) failed at %s:%d%s%s\n", expr, file, line,
               msg.empty() ? "" : ": ", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace ctx
