#include "eval/text/fuzz_ratio.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace ctx::text {
namespace {

struct Block {
  size_t i, j, k;
};

// difflib.SequenceMatcher over a and b (b indexed once), reporting the total size of matching blocks.
class SequenceMatcher {
 public:
  SequenceMatcher(std::u32string_view a, std::u32string_view b) : a_(a), b_(b), j2len_(b.size() + 1, 0), newj2len_(b.size() + 1, 0) {
    for (size_t j = 0; j < b.size(); ++j) b2j_[b[j]].push_back(j);
    if (b.size() >= 200) {  // autojunk: drop "popular" characters from the index
      const size_t ntest = b.size() / 100 + 1;
      for (auto it = b2j_.begin(); it != b2j_.end();)
        it = it->second.size() > ntest ? b2j_.erase(it) : std::next(it);
    }
  }

  size_t matched_characters() {
    size_t total = 0;
    std::vector<std::tuple<size_t, size_t, size_t, size_t>> queue{{0, a_.size(), 0, b_.size()}};
    while (!queue.empty()) {
      auto [alo, ahi, blo, bhi] = queue.back();
      queue.pop_back();
      const Block m = longest_match(alo, ahi, blo, bhi);
      if (m.k == 0) continue;
      total += m.k;
      if (alo < m.i && blo < m.j) queue.emplace_back(alo, m.i, blo, m.j);
      if (m.i + m.k < ahi && m.j + m.k < bhi) queue.emplace_back(m.i + m.k, ahi, m.j + m.k, bhi);
    }
    return total;
  }

 private:
  Block longest_match(size_t alo, size_t ahi, size_t blo, size_t bhi) {
    size_t besti = alo, bestj = blo, bestk = 0;
    // j2len_[j+1] = length of the match ending at a[i-1], b[j] (valid for j in `touched_`).
    std::vector<size_t> touched, new_touched;
    for (size_t i = alo; i < ahi; ++i) {
      new_touched.clear();
      auto it = b2j_.find(a_[i]);
      if (it != b2j_.end()) {
        for (size_t j : it->second) {
          if (j < blo) continue;
          if (j >= bhi) break;
          const size_t k = j2len_[j] + 1;  // j2len_[j] is the entry for j-1
          newj2len_[j + 1] = k;
          new_touched.push_back(j + 1);
          if (k > bestk) {
            besti = i + 1 - k;
            bestj = j + 1 - k;
            bestk = k;
          }
        }
      }
      for (size_t t : touched) j2len_[t] = 0;
      for (size_t t : new_touched) j2len_[t] = newj2len_[t];
      for (size_t t : new_touched) newj2len_[t] = 0;
      std::swap(touched, new_touched);
    }
    for (size_t t : touched) j2len_[t] = 0;
    // Extend over characters left out of the index (nothing is junk: isjunk is None).
    while (besti > alo && bestj > blo && a_[besti - 1] == b_[bestj - 1]) --besti, --bestj, ++bestk;
    while (besti + bestk < ahi && bestj + bestk < bhi && a_[besti + bestk] == b_[bestj + bestk]) ++bestk;
    return {besti, bestj, bestk};
  }

  std::u32string_view a_, b_;
  std::unordered_map<char32_t, std::vector<size_t>> b2j_;
  std::vector<size_t> j2len_, newj2len_;
};

size_t lcs_chars(std::u32string_view a, std::u32string_view b) {
  std::vector<uint32_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < b.size(); ++j) cur[j + 1] = a[i] == b[j] ? prev[j] + 1 : std::max(prev[j + 1], cur[j]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

int fuzz_ratio(std::u32string_view a, std::u32string_view b, FuzzBackend backend) {
  if (a == b) return 100;
  if (a.empty() || b.empty()) return 0;
  const double lensum = double(a.size() + b.size());
  double ratio;
  if (backend == FuzzBackend::kDifflib) {
    ratio = 2.0 * double(SequenceMatcher(a, b).matched_characters()) / lensum;
  } else {
    ratio = double(2 * lcs_chars(a, b)) / lensum;
  }
  return int(std::nearbyint(100 * ratio));
}

}  // namespace ctx::text
