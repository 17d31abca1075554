// A sequence of tokens whose bytes live back to back in one buffer: what the normalising tokenisers
// produce (lowercased, punctuation dropped), without one std::string per token. Reused between
// calls, it stops allocating once its buffers have grown.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ctx::text {

class TokenList {
 public:
  void clear() {
    bytes_.clear();
    ends_.clear();
  }
  // Bytes appended here since the previous token (or clear()) form the next token at end_token().
  std::string& bytes() { return bytes_; }
  void end_token() { ends_.push_back(uint32_t(bytes_.size())); }
  void push_back(std::string_view token) {
    bytes_.append(token);
    end_token();
  }

  // All tokens' bytes, back to back.
  std::string_view text() const { return bytes_; }
  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  std::string_view operator[](size_t k) const {
    const uint32_t begin = k == 0 ? 0 : ends_[k - 1];
    return std::string_view(bytes_).substr(begin, ends_[k] - begin);
  }
  // Equal token sequences (the token boundaries included).
  bool operator==(const TokenList&) const = default;
  std::vector<std::string> to_strings() const {
    std::vector<std::string> out;
    for (size_t k = 0; k < size(); ++k) out.emplace_back((*this)[k]);
    return out;
  }

 private:
  std::string bytes_;
  std::vector<uint32_t> ends_;  // token k is bytes_[ends_[k-1], ends_[k])
};

}  // namespace ctx::text
