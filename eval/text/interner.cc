#include "eval/text/interner.h"

#include "eval/text/unicode.h"

namespace ctx::text {
namespace {

uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
  return h ^ (h >> 29);
}

}  // namespace

void Interner::clear() {
  if (!keys_.empty()) std::fill(slots_.begin(), slots_.end(), 0u);
  keys_.clear();
  hashes_.clear();
}

void Interner::grow() {
  const size_t n = slots_.empty() ? 1024 : slots_.size() * 2;
  slots_.assign(n, 0u);
  mask_ = n - 1;
  for (size_t i = 0; i < keys_.size(); ++i) {
    size_t p = hashes_[i] & mask_;
    while (slots_[p]) p = (p + 1) & mask_;
    slots_[p] = uint32_t(i + 1);
  }
}

uint32_t Interner::find(std::string_view s) const {
  if (keys_.empty()) return kNone;
  const uint64_t h = hash_bytes(s);
  for (size_t p = h & mask_; const uint32_t v = slots_[p]; p = (p + 1) & mask_)
    if (hashes_[v - 1] == h && keys_[v - 1] == s) return v - 1;
  return kNone;
}

uint32_t Interner::id(std::string_view s) {
  if (2 * (keys_.size() + 1) > slots_.size()) grow();
  const uint64_t h = hash_bytes(s);
  size_t p = h & mask_;
  while (const uint32_t v = slots_[p]) {
    if (hashes_[v - 1] == h && keys_[v - 1] == s) return v - 1;
    p = (p + 1) & mask_;
  }
  const uint32_t id = uint32_t(keys_.size());
  keys_.push_back(s);
  hashes_.push_back(h);
  slots_[p] = id + 1;
  return id;
}

bool is_ascii(std::string_view s) {
  unsigned char acc = 0;
  for (unsigned char c : s) acc |= c;
  return acc < 0x80;
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    const int len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + size_t(len) > n) return false;
    uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; ++k) {
      if ((p[i + size_t(k)] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + size_t(k)] & 0x3F);
    }
    // Overlong forms decode to the same code point as the short form: not byte-comparable.
    if (cp < (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u)) return false;
    i += size_t(len);
  }
  return true;
}

std::string_view as_valid_utf8(std::string_view s, std::string& storage) {
  if (is_valid_utf8(s)) return s;
  storage = u32_to_utf8(utf8_to_u32(s));
  return storage;
}

}  // namespace ctx::text
