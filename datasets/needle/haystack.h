// Needle in a haystack (synthetic): filler sentences up to a target token length with one fact (the
// needle) inserted at a sentence boundary at a chosen depth. Deterministic for a seed.
// Thread-safe if the tokenizer is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace ctx::data {

struct HaystackSpec {
  int64_t context_tokens = 1000;  // target length of filler + needle, in tokens (no BOS)
  double depth_percent = 50;      // 0 = the needle opens the text, 100 = it closes it
  std::string needle;
  uint64_t seed = 0;
  // Filler sentences used in order and cycled; empty = seeded synthetic sentences.
  std::vector<std::string> filler;
};

struct Haystack {
  std::string text;              // sentences joined by single spaces
  int64_t tokens = 0;            // exact token count of `text` (no BOS)
  int64_t needle_token_offset = 0;  // tokens before the needle
  size_t needle_sentence = 0;    // index of the needle among the sentences
  size_t sentences = 0;          // filler sentences + 1
};

// Fills sentences while their summed token counts stay within context_tokens minus the needle's,
// then inserts the needle before filler sentence round(depth * n / 100). Throws ctx::Error if the
// needle alone exceeds the target or depth is outside [0, 100].
Haystack build_haystack(const HaystackSpec& spec, const Tokenizer& tokenizer);

// Splits a text into sentences at ". ", "! ", "? " and line breaks (empty pieces dropped).
std::vector<std::string> split_sentences(const std::string& text);

}  // namespace ctx::data
