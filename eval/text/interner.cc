#include "eval/text/interner.h"

#include <algorithm>
#include <cstring>

#include "eval/text/unicode.h"

namespace ctx::text {
namespace {

uint64_t read8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

uint64_t read4(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// Eight bytes per multiply, the last (partial) word read as overlapping loads as in wyhash (tokens
// are short, n-gram keys 4-16 bytes), then murmur3's finaliser: the slot index takes the low bits,
// which a plain multiply leaves depending on the low input bits only.
uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t h = kMul ^ n;
  size_t i = 0;
  for (; i + 8 < n; i += 8) {
    h = (h ^ read8(p + i)) * kMul;
    h ^= h >> 32;
  }
  const size_t rest = n - i;  // 0..8 bytes at p + i
  uint64_t w = 0;
  if (rest >= 4)
    w = read4(p + i) << 32 | read4(p + n - 4);
  else if (rest > 0)
    w = uint64_t(uint8_t(p[i])) << 16 | uint64_t(uint8_t(p[i + rest / 2])) << 8 | uint8_t(p[n - 1]);
  h = (h ^ w) * kMul;
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  return h;
}

uint64_t hash_key(uint64_t k) {  // murmur3's finaliser
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDull;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ull;
  return k ^ (k >> 33);
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

void PairInterner::clear() {
  if (!keys_.empty()) std::fill(slots_.begin(), slots_.end(), 0u);
  keys_.clear();
}

void PairInterner::grow() {
  const size_t n = slots_.empty() ? 1024 : slots_.size() * 2;
  slots_.assign(n, 0u);
  mask_ = n - 1;
  for (size_t i = 0; i < keys_.size(); ++i) {
    size_t p = hash_key(keys_[i]) & mask_;
    while (slots_[p]) p = (p + 1) & mask_;
    slots_[p] = uint32_t(i + 1);
  }
}

uint32_t PairInterner::id(uint32_t a, uint32_t b) {
  if (2 * (keys_.size() + 1) > slots_.size()) grow();
  const uint64_t key = uint64_t(a) << 32 | b;
  size_t p = hash_key(key) & mask_;
  while (const uint32_t v = slots_[p]) {
    if (keys_[v - 1] == key) return v - 1;
    p = (p + 1) & mask_;
  }
  const uint32_t id = uint32_t(keys_.size());
  keys_.push_back(key);
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
