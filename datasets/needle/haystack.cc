#include "datasets/needle/haystack.h"

#include <cmath>
#include <random>

#include "core/base/error.h"
#include "datasets/prompt_template.h"

namespace ctx::data {

namespace {

// A plain declarative sentence from small word lists: varied text without any real-world facts.
std::string synthetic_sentence(std::mt19937_64& rng) {
  static const char* kAdj[] = {"quiet", "old", "bright", "narrow", "busy", "distant", "green", "small", "wide", "late"};
  static const char* kNoun[] = {"river", "market", "garden", "bridge", "library", "harbor", "valley", "station",
                                "orchard", "workshop", "village", "meadow"};
  static const char* kVerb[] = {"faces", "follows", "borders", "overlooks", "surrounds", "joins", "crosses", "shelters"};
  static const char* kTail[] = {"in the morning", "after the rain", "during the festival", "every spring",
                                "at dusk", "for many years"};
  auto pick = [&](const auto& list) { return list[rng() % (sizeof(list) / sizeof(list[0]))]; };
  std::string s = std::string("The ") + pick(kAdj) + " " + pick(kNoun) + " " + pick(kVerb) + " the " + pick(kAdj) +
                  " " + pick(kNoun) + " " + pick(kTail) + ".";
  return s;
}

}  // namespace

std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    const std::string_view t = strip(cur);
    if (!t.empty()) out.emplace_back(t);
    cur.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' || c == '\r') {
      flush();
      continue;
    }
    cur.push_back(c);
    if ((c == '.' || c == '!' || c == '?') && i + 1 < text.size() && text[i + 1] == ' ') flush();
  }
  flush();
  return out;
}

Haystack build_haystack(const HaystackSpec& spec, const Tokenizer& tokenizer) {
  if (!(spec.depth_percent >= 0 && spec.depth_percent <= 100)) fail("needle depth ", spec.depth_percent, "% is outside [0, 100]");
  auto count = [&](const std::string& s) { return int64_t(tokenizer.encode(s, false).size()); };
  const int64_t needle_tokens = count(spec.needle);
  if (needle_tokens > spec.context_tokens)
    fail("the needle has ", needle_tokens, " tokens, more than context_tokens=", spec.context_tokens);
  std::mt19937_64 rng(spec.seed);
  std::vector<std::string> filler;
  int64_t used = needle_tokens;
  for (size_t i = 0;; ++i) {
    std::string s = spec.filler.empty() ? synthetic_sentence(rng) : spec.filler[i % spec.filler.size()];
    const int64_t t = count(s);
    if (t <= 0 || used + t > spec.context_tokens) break;
    used += t;
    filler.push_back(std::move(s));
  }
  Haystack h;
  h.needle_sentence = size_t(std::lround(spec.depth_percent * double(filler.size()) / 100.0));
  std::string before, after;
  for (size_t i = 0; i < filler.size(); ++i) (i < h.needle_sentence ? before : after) += filler[i] + " ";
  if (!after.empty()) after.pop_back();
  h.text = before + spec.needle + (after.empty() ? "" : " " + after);
  h.tokens = count(h.text);
  h.needle_token_offset = before.empty() ? 0 : count(std::string(strip(before)));
  h.sentences = filler.size() + 1;
  return h;
}

}  // namespace ctx::data
