#include "eval/text/fuzz_ratio.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cmath>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "eval/metrics/lcs.h"

namespace ctx::text {
namespace {

struct Block {
  size_t i, j, k;
};

// Both strings as dense character ids (ASCII through a table, the rest through a map).
struct DenseChars {
  std::vector<uint32_t> a, b;
  size_t alphabet = 0;

  DenseChars(std::u32string_view sa, std::u32string_view sb) {
    std::array<uint32_t, 128> ascii;
    ascii.fill(UINT32_MAX);
    std::unordered_map<char32_t, uint32_t> other;
    auto id = [&](char32_t c) {
      uint32_t& slot = c < 128 ? ascii[c] : other.emplace(c, UINT32_MAX).first->second;
      if (slot == UINT32_MAX) slot = uint32_t(alphabet++);
      return slot;
    };
    a.reserve(sa.size());
    b.reserve(sb.size());
    for (char32_t c : sa) a.push_back(id(c));
    for (char32_t c : sb) b.push_back(id(c));
  }
};

// difflib.SequenceMatcher over a and b (b indexed once), reporting the total size of matching blocks.
class SequenceMatcher {
 public:
  SequenceMatcher(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b, size_t alphabet)
      : a_(a), b_(b), start_(alphabet + 1, 0), j2len_(b.size() + 1, 0), newj2len_(b.size() + 1, 0) {
    // b2j as one array of positions per character (ascending), the autojunk rule applied: when
    // len(b) >= 200, characters occurring more than len(b)/100 + 1 times get no positions.
    for (uint32_t c : b) ++start_[c + 1];
    if (b.size() >= 200) {
      const uint32_t ntest = uint32_t(b.size() / 100 + 1);
      for (auto& n : start_)
        if (n > ntest) n = 0;
    }
    for (size_t c = 0; c < alphabet; ++c) start_[c + 1] += start_[c];
    positions_.resize(start_[alphabet]);
    std::vector<uint32_t> fill(start_.begin(), start_.end() - 1);
    for (size_t j = 0; j < b.size(); ++j)
      if (start_[b[j] + 1] - start_[b[j]] > 0 && fill[b[j]] < start_[b[j] + 1]) positions_[fill[b[j]]++] = uint32_t(j);
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
    touched_.clear();
    for (size_t i = alo; i < ahi; ++i) {
      new_touched_.clear();
      const uint32_t c = a_[i];
      if (c < start_.size() - 1) {
        const uint32_t* first = positions_.data() + start_[c];
        const uint32_t* last = positions_.data() + start_[c + 1];
        for (const uint32_t* it = std::lower_bound(first, last, uint32_t(blo)); it != last && *it < bhi; ++it) {
          const size_t j = *it;
          const uint32_t k = j2len_[j] + 1;  // j2len_[j] is the entry for j-1
          newj2len_[j + 1] = k;
          new_touched_.push_back(uint32_t(j + 1));
          if (k > bestk) {
            besti = i + 1 - k;
            bestj = j + 1 - k;
            bestk = k;
          }
        }
      }
      for (uint32_t t : touched_) j2len_[t] = 0;
      for (uint32_t t : new_touched_) j2len_[t] = newj2len_[t];
      for (uint32_t t : new_touched_) newj2len_[t] = 0;
      std::swap(touched_, new_touched_);
    }
    for (uint32_t t : touched_) j2len_[t] = 0;
    // Extend over characters left out of the index (nothing is junk: isjunk is None).
    while (besti > alo && bestj > blo && a_[besti - 1] == b_[bestj - 1]) --besti, --bestj, ++bestk;
    while (besti + bestk < ahi && bestj + bestk < bhi && a_[besti + bestk] == b_[bestj + bestk]) ++bestk;
    return {besti, bestj, bestk};
  }

  const std::vector<uint32_t>&a_, &b_;
  std::vector<uint32_t> start_, positions_;  // positions_[start_[c] .. start_[c+1]) = b2j[c]
  std::vector<uint32_t> j2len_, newj2len_, touched_, new_touched_;
};

}  // namespace

int fuzz_ratio(std::u32string_view a, std::u32string_view b, FuzzBackend backend) {
  if (a == b) return 100;
  if (a.empty() || b.empty()) return 0;
  const double lensum = double(a.size() + b.size());
  const DenseChars d(a, b);
  double ratio;
  if (backend == FuzzBackend::kDifflib) {
    ratio = 2.0 * double(SequenceMatcher(d.a, d.b, d.alphabet).matched_characters()) / lensum;
  } else {
    ratio = double(2 * lcs_length(d.a, d.b, d.alphabet)) / lensum;
  }
  return int(std::nearbyint(100 * ratio));
}

}  // namespace ctx::text
