#include "eval/metrics/lcs.h"

#include <algorithm>

namespace ctx {

void LcsTable::build(std::span<const uint32_t> rows, std::span<const uint32_t> cols, bool keep_rows) {
  words_ = (cols.size() + 63) / 64;
  if (masks_.size() < alphabet_ * words_) masks_.assign(alphabet_ * words_, 0);
  for (size_t j = 0; j < cols.size(); ++j) masks_[size_t(cols[j]) * words_ + j / 64] |= uint64_t(1) << (j % 64);
  if (words_ == 1) {  // one machine word: no carries between words
    rows_.resize(rows.size() + 1);
    uint64_t v = ~uint64_t(0);
    rows_[0] = v;
    for (size_t i = 0; i < rows.size(); ++i) {
      const uint64_t u = v & masks_[rows[i]];
      v = (v + u) | (v - u);
      rows_[i + 1] = v;
    }
    for (uint32_t c : cols) masks_[c] = 0;
    const uint64_t valid = cols.size() == 64 ? ~uint64_t(0) : (uint64_t(1) << cols.size()) - 1;
    length_ = size_t(__builtin_popcountll(~v & valid));
    return;
  }
  v_.assign(words_, ~uint64_t(0));
  if (keep_rows) {
    rows_.resize((rows.size() + 1) * words_);
    std::fill(rows_.begin(), rows_.begin() + long(words_), ~uint64_t(0));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint64_t* m = &masks_[size_t(rows[i]) * words_];
    uint64_t carry = 0;
    for (size_t w = 0; w < words_; ++w) {
      const uint64_t v = v_[w], u = v & m[w];
      const uint64_t sum = v + u;
      const uint64_t sum2 = sum + carry;
      carry = (sum < v) | (sum2 < sum);
      v_[w] = sum2 | (v - u);
    }
    if (keep_rows) std::copy(v_.begin(), v_.end(), rows_.begin() + long((i + 1) * words_));
  }
  for (size_t j = 0; j < cols.size(); ++j) masks_[size_t(cols[j]) * words_ + j / 64] = 0;
  length_ = 0;
  for (size_t w = 0; w < words_; ++w) {
    uint64_t x = ~v_[w];
    if (w == words_ - 1 && cols.size() % 64) x &= (uint64_t(1) << (cols.size() % 64)) - 1;
    length_ += size_t(__builtin_popcountll(x));
  }
}

size_t lcs_length(std::span<const uint32_t> a, std::span<const uint32_t> b, size_t alphabet) {
  if (a.empty() || b.empty()) return 0;
  thread_local LcsTable t;  // buffers reused between calls
  t.set_alphabet(alphabet);
  t.build(a, b, false);
  return t.length();
}

namespace {

std::vector<size_t> increasing(std::vector<size_t> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

}  // namespace

std::vector<size_t> rouge_backtrack(const LcsTable& table, std::span<const uint32_t> ref,
                                    std::span<const uint32_t> can) {
  std::vector<size_t> out;
  rouge_backtrack_each(
      ref, can, [&](size_t i, size_t j) { return table.at(i, j); }, [&](size_t i) { out.push_back(i); });
  return increasing(std::move(out));
}

std::vector<size_t> lcs_indices_table(std::span<const uint32_t> ref, std::span<const uint32_t> can) {
  const size_t rows = ref.size(), cols = can.size(), w = cols + 1;
  std::vector<uint32_t> t((rows + 1) * w, 0);
  for (size_t i = 1; i <= rows; ++i)
    for (size_t j = 1; j <= cols; ++j)
      t[i * w + j] = ref[i - 1] == can[j - 1] ? t[(i - 1) * w + j - 1] + 1 : std::max(t[(i - 1) * w + j], t[i * w + j - 1]);
  std::vector<size_t> out;
  rouge_backtrack_each(
      ref, can, [&](size_t i, size_t j) { return t[i * w + j]; }, [&](size_t i) { out.push_back(i); });
  return increasing(std::move(out));
}

}  // namespace ctx
