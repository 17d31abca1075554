// The monotonic clock every ctxlab timing uses: seconds since an arbitrary fixed point, as a double.
// Thread-safe.
#pragma once

#include <chrono>

namespace ctx {

inline double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace ctx
