// Helpers for the metrics' fast paths: dense ids for the distinct strings of one comparison (an
// open-addressing table over string_views, reused between calls without reallocating), and UTF-8
// checks that let a metric take an ASCII / byte-level path and fall back to the exact code-point
// path otherwise. Not thread-safe per instance: metrics keep one per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ctx::text {

class Interner {
 public:
  // Forgets every string; ids restart at 0.
  void clear();
  // The id of `s` (0, 1, 2, ... in order of first appearance). Only the view is stored: the bytes
  // must stay alive until clear().
  uint32_t id(std::string_view s);
  // The id of `s`, or kNone when it has none (nothing is stored).
  static constexpr uint32_t kNone = UINT32_MAX;
  uint32_t find(std::string_view s) const;
  size_t size() const { return keys_.size(); }
  std::string_view key(uint32_t id) const { return keys_[id]; }

 private:
  void grow();
  std::vector<uint32_t> slots_;  // id + 1, 0 = empty
  std::vector<uint64_t> hashes_;  // per id
  std::vector<std::string_view> keys_;
  size_t mask_ = 0;
};

// Dense ids for pairs of 32-bit ids, e.g. an n-gram of order k as (id of its first k-1 tokens, id
// of its last token), so that n-grams of any order are counted on integers. Reused like Interner.
class PairInterner {
 public:
  void clear();
  // The id of (a, b): 0, 1, 2, ... in order of first appearance.
  uint32_t id(uint32_t a, uint32_t b);
  size_t size() const { return keys_.size(); }

 private:
  void grow();
  std::vector<uint32_t> slots_;  // id + 1, 0 = empty
  std::vector<uint64_t> keys_;   // per id: a << 32 | b
  size_t mask_ = 0;
};

bool is_ascii(std::string_view s);
// True when `s` decodes without error in utf8_to_u32 and has no overlong forms, so that equal
// byte strings and equal code-point strings are the same thing.
bool is_valid_utf8(std::string_view s);
// `s` itself when it is valid UTF-8, else its utf8_to_u32 -> u32_to_utf8 round trip (invalid bytes
// become U+FFFD, as the code-point paths see them) kept in `storage`.
std::string_view as_valid_utf8(std::string_view s, std::string& storage);

}  // namespace ctx::text
