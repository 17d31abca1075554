// Longest common subsequence over dense integer token ids, shared by the ROUGE variants: a
// bit-parallel DP (Allison-Dix / Hyyro: one bit per column, O(rows * cols/64) word operations)
// that keeps its rows, so that any cell t[i][j] of the classic LCS table can be read back
// (popcount of the row's prefix) and the reference scorers' backtracks reproduced exactly.
// Not thread-safe per instance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ctx {

class LcsTable {
 public:
  // Token ids of both sequences must be < alphabet.
  explicit LcsTable(size_t alphabet = 0) : alphabet_(alphabet) {}
  // For a table reused between comparisons (its buffers are kept).
  void set_alphabet(size_t alphabet) { alphabet_ = alphabet; }

  // Fills the table of `rows` (i) against `cols` (j); with keep_rows false only length() is valid.
  void build(std::span<const uint32_t> rows, std::span<const uint32_t> cols, bool keep_rows = true);
  // t[i][j]: LCS length of rows[0..i) and cols[0..j).
  uint32_t at(size_t i, size_t j) const {  // inline: the backtracks read two cells per step
    const uint64_t* row = &rows_[i * words_];
    uint32_t n = 0;
    size_t w = 0;
    for (; w < j / 64; ++w) n += uint32_t(__builtin_popcountll(~row[w]));
    if (j % 64) n += uint32_t(__builtin_popcountll(~row[w] & ((uint64_t(1) << (j % 64)) - 1)));
    return n;
  }
  size_t length() const { return length_; }

 private:
  size_t alphabet_, words_ = 0, length_ = 0;
  std::vector<uint64_t> masks_;  // alphabet x words: bit j set where cols[j] == token
  std::vector<uint64_t> rows_;   // (|rows| + 1) x words, bit j clear where t[i][j+1] > t[i][j]
  std::vector<uint64_t> v_;
};

// Length of an LCS of a and b (ids < alphabet).
size_t lcs_length(std::span<const uint32_t> a, std::span<const uint32_t> b, size_t alphabet);
// rouge-score's _backtrack_norec over any reader at(i, j) of the DP table: from the end, on a match
// take it, else move along `can` if t[i][j-1] > t[i-1][j], else along `ref`. Calls on_match(i) for
// the LCS's indices into `ref`, last first.
template <class At, class OnMatch>
void rouge_backtrack_each(std::span<const uint32_t> ref, std::span<const uint32_t> can, const At& at,
                          OnMatch&& on_match) {
  size_t i = ref.size(), j = can.size();
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      on_match(i - 1);
      --i;
      --j;
    } else if (at(i, j - 1) > at(i - 1, j)) {
      --j;
    } else {
      --i;
    }
  }
}

// Those indices in increasing order. `table` must have been built with (ref, can).
std::vector<size_t> rouge_backtrack(const LcsTable& table, std::span<const uint32_t> ref,
                                    std::span<const uint32_t> can);
// The classic O(|ref| * |can|) table and the same backtrack (the reference for tests).
std::vector<size_t> lcs_indices_table(std::span<const uint32_t> ref, std::span<const uint32_t> can);

}  // namespace ctx
