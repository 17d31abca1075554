#include "core/tokenizer/tokenizer.h"

#include "core/tokenizer/llama2c_tokenizer.h"
#include "core/tokenizer/sentencepiece_tokenizer.h"

namespace ctx {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, int32_t vocab_size) {
  // Dispatch on the name only: a tokenizer.bin has no magic number to sniff.
  if (std::string_view(path).ends_with(".model")) return SentencePieceTokenizer::load(path);
  return Llama2cTokenizer::load(path, vocab_size);
}

}  // namespace ctx
