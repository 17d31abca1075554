// fuzzywuzzy 0.18 `fuzz.ratio(a, b)` on code points, with either backend:
// * kDifflib: Python difflib.SequenceMatcher(None, a, b).ratio() = 2*M/(len a + len b), M from
//   difflib's greedy longest-matching-block recursion (first longest block wins: smallest i, then
//   smallest j), with its autojunk heuristic: when len(b) >= 200, characters of b occurring more than
//   1 + len(b)//100 times are not used as match anchors (blocks may still extend over them).
// * kLevenshtein: python-Levenshtein's ratio = (lensum - indel distance)/lensum = 2*LCS/lensum.
// Then: 100 if a == b, else 0 if either is empty, else round-half-even(100*ratio).
// Pure and thread-safe.
#pragma once

#include <string_view>

namespace ctx::text {

enum class FuzzBackend { kDifflib, kLevenshtein };

int fuzz_ratio(std::u32string_view a, std::u32string_view b, FuzzBackend backend);

}  // namespace ctx::text
