#include "eval/metrics/lcs.h"

#include <algorithm>

namespace ctx {

size_t lcs_length(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  std::vector<uint32_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j)
      cur[j + 1] = a[i] == b[j] ? prev[j] + 1 : std::max(prev[j + 1], cur[j]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::vector<size_t> lcs_indices(const std::vector<int32_t>& ref, const std::vector<int32_t>& can) {
  const size_t rows = ref.size(), cols = can.size(), w = cols + 1;
  std::vector<uint32_t> t((rows + 1) * w, 0);
  for (size_t i = 1; i <= rows; ++i)
    for (size_t j = 1; j <= cols; ++j)
      t[i * w + j] = ref[i - 1] == can[j - 1] ? t[(i - 1) * w + j - 1] + 1 : std::max(t[(i - 1) * w + j], t[i * w + j - 1]);
  std::vector<size_t> out;
  size_t i = rows, j = cols;
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      out.push_back(i - 1);
      --i;
      --j;
    } else if (t[i * w + j - 1] > t[(i - 1) * w + j]) {
      --j;
    } else {
      --i;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace ctx
