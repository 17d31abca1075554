// A sentencepiece `tokenizer.model` (e.g. Llama-2's), backed by libsentencepiece so that encode()
// and decode() are exactly SentencePieceProcessor's Encode / Decode (no BOS/EOS unless asked).
//
// decode_next() is for streaming and is built from pieces, not from decode(): a byte-fallback token
// yields its raw byte, so the bytes of a multi-byte character arrive one by one and concatenate to
// valid UTF-8 (sentencepiece's decode would turn each incomplete byte into U+FFFD). Rules:
// control ids -> ""; <unk> -> the model's unk surface (" ⁇ "); byte pieces <0xNN> -> that byte;
// other pieces with U+2581 replaced by ' '. When the model strips the dummy-prefix space on decode
// (add_dummy_prefix), one leading U+2581 is dropped if `prev` is BOS or negative (start of text).
// So concatenating decode_next over [BOS] + ids equals decode(ids) whenever that text is valid UTF-8;
// unlike decode(), a BOS in the middle of a sequence also strips the space of the piece after it
// (as llama2.c's run.c does).
//
// Immutable after load(); all methods are thread-safe (SentencePieceProcessor's const methods are).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace ctx {

class SentencePieceTokenizer final : public Tokenizer {
 public:
  // Throws ctx::Error naming the path if the file is missing, unreadable or not a sentencepiece model.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& path);
  ~SentencePieceTokenizer() override;

  // Throws ctx::Error if BOS/EOS is asked for but the model has none.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos = false) const override;
  std::string decode(std::span<const int32_t> ids) const override;
  std::string decode_next(int32_t prev, int32_t id) const override;
  std::string piece(int32_t id) const override;

  int32_t vocab_size() const override;
  int32_t bos_id() const override;
  int32_t eos_id() const override;
  std::string_view kind() const override { return "sentencepiece"; }

 private:
  SentencePieceTokenizer();
  void check_id(int32_t id) const;

  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string unk_surface_;
  bool strips_dummy_prefix_ = false;
};

}  // namespace ctx
