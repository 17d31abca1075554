#include "eval/metrics/lcs.h"

#include <algorithm>
#include <unordered_map>

namespace ctx {

// Bit-parallel LCS length (Allison-Dix / Hyyro): one bit per position of b, O(|a| * |b|/64).
size_t lcs_length(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.empty() || b.empty()) return 0;
  const size_t words = (b.size() + 63) / 64;
  std::unordered_map<int32_t, std::vector<uint64_t>> match;  // token -> positions in b
  for (size_t j = 0; j < b.size(); ++j) {
    auto& m = match[b[j]];
    if (m.empty()) m.assign(words, 0);
    m[j / 64] |= uint64_t(1) << (j % 64);
  }
  std::vector<uint64_t> v(words, ~uint64_t(0));
  for (int32_t x : a) {
    auto it = match.find(x);
    if (it == match.end()) continue;
    const auto& m = it->second;
    uint64_t carry = 0;
    for (size_t w = 0; w < words; ++w) {
      const uint64_t u = v[w] & m[w];
      const uint64_t sum = v[w] + u;
      const uint64_t sum2 = sum + carry;
      const uint64_t next_carry = (sum < v[w]) | (sum2 < sum);
      v[w] = sum2 | (v[w] - u);
      carry = next_carry;
    }
  }
  size_t zeros = 0;
  for (size_t w = 0; w < words; ++w) {
    uint64_t x = ~v[w];
    if (w == words - 1 && b.size() % 64) x &= (uint64_t(1) << (b.size() % 64)) - 1;
    zeros += size_t(__builtin_popcountll(x));
  }
  return zeros;
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
