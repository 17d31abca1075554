// Tokenizer interface: text <-> token ids, with the exact semantics of the reference implementation
// of each format (sentencepiece's SentencePieceProcessor for `tokenizer.model`, llama2.c run.c's
// encode/decode for `tokenizer.bin`). Implementations are immutable after loading and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ctx {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids of `text`, preceded by BOS when add_bos (and followed by EOS when add_eos).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos = false) const = 0;
  // Text of a whole id sequence, as the reference decoder returns it (see each implementation for
  // how it treats BOS and ids out of the vocab; out-of-range ids throw ctx::Error).
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // Text to emit for `id` when it follows `prev` during generation (streaming output); prev < 0
  // means `id` starts the text. Raw bytes: a byte-fallback token yields its single byte.
  virtual std::string decode_next(int32_t prev, int32_t id) const = 0;
  // The vocabulary entry of `id` (sentencepiece piece or tokenizer.bin string).
  virtual std::string piece(int32_t id) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 if none
  virtual int32_t eos_id() const = 0;  // -1 if none
  virtual std::string_view kind() const = 0;  // "sentencepiece" | "llama2c"
};

// Loads a tokenizer by file type: `*.model` -> sentencepiece (`vocab_size` is ignored; a model's
// embedding table may be padded beyond the tokenizer's vocab), otherwise llama2.c tokenizer.bin
// (whose entry count is not stored in the file and comes from `vocab_size`, the model's vocab; it
// must be given, 0 is an error). Throws ctx::Error naming the path on a missing or corrupt file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int32_t vocab_size = 0);

}  // namespace ctx
