// Longest common subsequence over integer token ids, shared by the ROUGE variants.
// Pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ctx {

// Length of an LCS of a and b.
size_t lcs_length(const std::vector<int32_t>& a, const std::vector<int32_t>& b);
// Indices into `ref` of the LCS that rouge-score's _backtrack_norec reads out of the DP table
// (from the end: on a match take it, else move along `can` if t[i][j-1] > t[i-1][j], else along
// `ref`), in increasing order.
std::vector<size_t> lcs_indices(const std::vector<int32_t>& ref, const std::vector<int32_t>& can);

}  // namespace ctx
