// LongBench middle truncation: a text longer than `max_tokens` tokens (BOS included, as LongBench's
// pred.py counts with a Hugging Face Llama tokenizer) keeps its first max_tokens/2 and last
// max_tokens/2 tokens (integer halves, so an odd budget keeps one token less), each half decoded on
// its own and concatenated. Pure; thread-safe if the tokenizer is.
#pragma once

#include <string>
#include <string_view>

#include "core/tokenizer/tokenizer.h"
#include "datasets/dataset.h"

namespace ctx::data {

struct TruncatedText {
  std::string text;
  TruncationRecord record;  // original, kept and cut token counts
};

// max_tokens <= 0 only measures. max_tokens == 1 throws ctx::Error (no half to keep).
TruncatedText middle_truncate(std::string_view text, const Tokenizer& tokenizer, int64_t max_tokens);

}  // namespace ctx::data
