// llama2.c `tokenizer.bin` with exactly the semantics of run.c's encode()/decode()/safe_printf
// (karpathy/llama2.c, run.c blob 2fcd687a; see shared/fixtures/stories260k/README.md).
//
// File format (little-endian): int32 max_token_length, then `vocab_size` entries of
// {float32 score, int32 len, len bytes}. The entry count is not in the file: it is the model's vocab
// size. Bytes after the last entry are ignored, as run.c ignores them.
//
// run.c semantics reproduced here, including the corner cases:
// * Strings are C strings: an entry is cut at its first NUL byte, and encode() stops at the first NUL
//   of the text.
// * encode: optional BOS (id 1); the id of " " as a dummy prefix when the text is non-empty; one id
//   per UTF-8 chunk (a lead byte plus up to 3 continuation bytes) if the chunk is in the vocab, else
//   one byte token (byte + 3) per byte; then repeatedly merge the adjacent pair (BOS included) whose
//   concatenation is in the vocab with the highest score (> -1e10), leftmost on ties; optional EOS
//   (id 2). A string that occurs more than once in the vocab maps to the id that run.c's
//   stable-qsort + glibc-bsearch lookup returns.
// * decode_next(prev, id): the entry; one leading space is dropped when prev is BOS; an entry that
//   sscanf("<0x%02hhX>") accepts becomes that raw byte (byte 0 becomes "", as a C string would).
// BOS is id 1 and EOS is id 2, as run.c hard-codes them.
//
// Encoding is O(n log n) in the text length (linked list + priority queue of candidate merges).
// Immutable after load(); all methods are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace ctx {

class Llama2cTokenizer final : public Tokenizer {
 public:
  // Reads `path` with `vocab_size` entries. Throws ctx::Error naming the path (and the entry index)
  // for a missing file, a vocab_size < 3 (ids 0..2 are <unk>, BOS, EOS), a truncated header or entry,
  // a max_token_length <= 0, or an entry length that is negative or above max_token_length (the
  // llama2.c exporter writes the longest length there; run.c's merge buffer is sized from it).
  static std::unique_ptr<Llama2cTokenizer> load(const std::string& path, int32_t vocab_size);
  // Same, from bytes already in memory; `path` only names the source in error messages.
  static std::unique_ptr<Llama2cTokenizer> parse(std::string_view bytes, int32_t vocab_size,
                                                 const std::string& path);

  // Throws ctx::Error if the text needs a token the vocab lacks (no " " entry for the dummy
  // prefix, or a byte-fallback id >= vocab_size), where run.c would read out of bounds.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos = false) const override;
  // A leading BOS is context only (run.c never prints the first token of a sequence); every other
  // id is decode_next(previous id, id), the first one with no previous id. So decode([1] + ids) is
  // exactly what run.c prints for a prompt, without the safe_printf filter (raw bytes).
  std::string decode(std::span<const int32_t> ids) const override;
  // run.c decode(prev, id), raw (unfiltered); prev may be -1 for "no previous token".
  std::string decode_next(int32_t prev, int32_t id) const override;
  std::string piece(int32_t id) const override;

  int32_t vocab_size() const override { return int32_t(offsets_.size()) - 1; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  std::string_view kind() const override { return "llama2c"; }

  float score(int32_t id) const;
  int32_t max_token_length() const { return max_token_length_; }

 private:
  Llama2cTokenizer() = default;
  std::string_view entry(int32_t id) const;
  int32_t lookup(std::string_view s) const;  // run.c str_lookup: id or -1
  void check_id(int32_t id) const;
  const std::string& rendered(int32_t prev, int32_t id) const;  // decode_next without the copy

  std::string path_;
  int32_t max_token_length_ = 0;
  size_t longest_entry_ = 0;        // longest entry: longer concatenations need no lookup
  std::string arena_;               // all entries back to back (already cut at NUL)
  std::vector<size_t> offsets_;     // entry i is arena_[offsets_[i], offsets_[i + 1])
  std::vector<float> scores_;
  std::vector<std::string> out_;            // decode_next output for each id
  std::vector<std::string> out_after_bos_;  // same, when the previous token is BOS

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string_view, int32_t, Hash, std::equal_to<>> ids_;  // views into arena_
};

// run.c's safe_printf filter: returns `piece`, or "" for a single-byte piece that is neither
// printable nor whitespace in the C locale (a lone byte of a multi-byte UTF-8 character, a control
// character). Apply it to decode_next() output to get exactly what run.c writes to stdout.
std::string_view llama2c_printable(std::string_view piece);

}  // namespace ctx
