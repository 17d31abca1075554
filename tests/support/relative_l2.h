// ||a - ref|| / ||ref|| over n floats in double (infinity when a holds a non-finite value): the
// error measure of the GPU tests against float32 references.
#pragma once

#include <cmath>
#include <cstddef>

namespace ctx::test {

inline double relative_l2(const float* a, const float* ref, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    den += double(ref[i]) * ref[i];
  }
  return std::sqrt(num / den);
}

}  // namespace ctx::test
