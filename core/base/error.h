// Errors in ctxlab come in two kinds.
//
// * ctx::Error (and its subclass ctx::Unsupported): something a user caused (bad config key, missing file, corrupt checkpoint, malformed
//   data row, unsupported combination). The message is one line that names the file/key/value and
//   what was expected. Callers catch it at the CLI or trial boundary and report it; nothing aborts.
// * CTX_CHECK: a broken internal invariant (a programmer error). It prints file:line and aborts.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ctx {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A valid request that the chosen plugin cannot run (head dim, layout, device, ...): the runner
// records the trial as `unsupported` rather than `failed`.
class Unsupported : public Error {
 public:
  using Error::Error;
};

// Concatenates all arguments with operator<< into one message.
template <class... Parts>
std::string str_cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

// Throws ctx::Error with the concatenated message.
template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(str_cat(parts...));
}

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace ctx

#define CTX_CHECK(cond, ...)                                                            \
  do {                                                                                  \
    if (!(cond)) ::ctx::check_failed(#cond, __FILE__, __LINE__, ::ctx::str_cat("" __VA_OPT__(,) __VA_ARGS__)); \
  } while (0)
