#include "eval/text/porter_stemmer.h"

#include <algorithm>
#include <deque>
#include <unordered_map>

#include "eval/text/interner.h"
#include "eval/text/unicode.h"

namespace ctx::text {
namespace {

using Word = std::u32string;

bool ends_with(const Word& w, std::u32string_view suffix) {
  return w.size() >= suffix.size() && std::u32string_view(w).substr(w.size() - suffix.size()) == suffix;
}
Word drop(const Word& w, size_t n) { return w.substr(0, w.size() - n); }

bool is_vowel_letter(char32_t c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// Consonant per the paper: not a vowel letter, and 'y' only when it follows a vowel (or starts).
bool is_consonant(const Word& w, size_t i) {
  if (is_vowel_letter(w[i])) return false;
  if (w[i] != 'y') return true;
  // 'y' at i is a consonant iff i == 0 or w[i-1] is not a consonant; resolve the chain of y's.
  size_t k = i;
  while (k > 0 && w[k - 1] == 'y') --k;
  // w[k] starts a run of y's; w[k] is a consonant iff k == 0 or w[k-1] is a vowel.
  bool cons = k == 0 ? true : !is_consonant(w, k - 1);
  for (size_t j = k + 1; j <= i; ++j) cons = !cons;
  return cons;
}

// m in [C](VC){m}[V]: the number of vowel->consonant transitions.
int measure(const Word& w) {
  int m = 0;
  bool prev_vowel = false;
  for (size_t i = 0; i < w.size(); ++i) {
    const bool cons = is_consonant(w, i);
    if (cons && prev_vowel) ++m;
    prev_vowel = !cons;
  }
  return m;
}

bool contains_vowel(const Word& w) {
  for (size_t i = 0; i < w.size(); ++i)
    if (!is_consonant(w, i)) return true;
  return false;
}

bool ends_double_consonant(const Word& w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

// *o: ends consonant-vowel-consonant, the last not w, x or y; NLTK also accepts a 2-letter vowel-consonant word.
bool ends_cvc(const Word& w) {
  const size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != 'w' &&
      w[n - 1] != 'x' && w[n - 1] != 'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
}

enum class Cond { kNone, kPositive, kGreater1, kIonStem, kLogi };

struct Rule {
  std::u32string_view suffix, replacement;
  Cond cond;
};

bool holds(Cond c, const Word& stem, const Word& word) {
  switch (c) {
    case Cond::kNone: return true;
    case Cond::kPositive: return measure(stem) > 0;
    case Cond::kGreater1: return measure(stem) > 1;
    case Cond::kIonStem: return measure(stem) > 1 && !stem.empty() && (stem.back() == 's' || stem.back() == 't');
    case Cond::kLogi: return measure(drop(word, 3)) > 0;  // the stem with its 'l'
  }
  return false;
}

// The first rule whose suffix matches decides: replaced if its condition holds, else the word stays.
template <size_t N>
Word apply_rules(const Word& word, const Rule (&rules)[N]) {
  for (const Rule& r : rules) {
    if (!ends_with(word, r.suffix)) continue;
    Word stem = drop(word, r.suffix.size());
    if (!holds(r.cond, stem, word)) return word;
    return stem + Word(r.replacement);
  }
  return word;
}

Word step1a(const Word& w) {
  if (ends_with(w, U"ies") && w.size() == 4) return drop(w, 3) + U"ie";
  static const Rule rules[] = {
      {U"sses", U"ss", Cond::kNone}, {U"ies", U"i", Cond::kNone}, {U"ss", U"ss", Cond::kNone}, {U"s", U"", Cond::kNone}};
  return apply_rules(w, rules);
}

Word step1b(const Word& w) {
  if (ends_with(w, U"ied")) return drop(w, 3) + (w.size() == 4 ? U"ie" : U"i");
  if (ends_with(w, U"eed")) {
    Word stem = drop(w, 3);
    return measure(stem) > 0 ? stem + U"ee" : w;
  }
  Word stem;
  bool found = false;
  for (std::u32string_view suffix : {std::u32string_view(U"ed"), std::u32string_view(U"ing")}) {
    if (!ends_with(w, suffix)) continue;
    stem = drop(w, suffix.size());
    if (contains_vowel(stem)) {
      found = true;
      break;
    }
  }
  if (!found) return w;
  if (ends_with(stem, U"at") || ends_with(stem, U"bl") || ends_with(stem, U"iz")) return stem + U"e";
  if (ends_double_consonant(stem)) {
    const char32_t last = stem.back();
    return (last != 'l' && last != 's' && last != 'z') ? drop(stem, 1) : stem;
  }
  if (measure(stem) == 1 && ends_cvc(stem)) return stem + U"e";
  return stem;
}

Word step1c(const Word& w) {
  if (!ends_with(w, U"y")) return w;
  Word stem = drop(w, 1);
  return (stem.size() > 1 && is_consonant(stem, stem.size() - 1)) ? stem + U"i" : w;
}

Word step2(const Word& w) {
  if (ends_with(w, U"alli") && measure(drop(w, 4)) > 0) return step2(drop(w, 4) + U"al");
  static const Rule rules[] = {
      {U"ational", U"ate", Cond::kPositive}, {U"tional", U"tion", Cond::kPositive},
      {U"enci", U"ence", Cond::kPositive},   {U"anci", U"ance", Cond::kPositive},
      {U"izer", U"ize", Cond::kPositive},    {U"bli", U"ble", Cond::kPositive},
      {U"alli", U"al", Cond::kPositive},     {U"entli", U"ent", Cond::kPositive},
      {U"eli", U"e", Cond::kPositive},       {U"ousli", U"ous", Cond::kPositive},
      {U"ization", U"ize", Cond::kPositive}, {U"ation", U"ate", Cond::kPositive},
      {U"ator", U"ate", Cond::kPositive},    {U"alism", U"al", Cond::kPositive},
      {U"iveness", U"ive", Cond::kPositive}, {U"fulness", U"ful", Cond::kPositive},
      {U"ousness", U"ous", Cond::kPositive}, {U"aliti", U"al", Cond::kPositive},
      {U"iviti", U"ive", Cond::kPositive},   {U"biliti", U"ble", Cond::kPositive},
      {U"fulli", U"ful", Cond::kPositive},   {U"logi", U"log", Cond::kLogi}};
  return apply_rules(w, rules);
}

Word step3(const Word& w) {
  static const Rule rules[] = {{U"icate", U"ic", Cond::kPositive}, {U"ative", U"", Cond::kPositive},
                               {U"alize", U"al", Cond::kPositive}, {U"iciti", U"ic", Cond::kPositive},
                               {U"ical", U"ic", Cond::kPositive},  {U"ful", U"", Cond::kPositive},
                               {U"ness", U"", Cond::kPositive}};
  return apply_rules(w, rules);
}

Word step4(const Word& w) {
  static const Rule rules[] = {
      {U"al", U"", Cond::kGreater1},   {U"ance", U"", Cond::kGreater1}, {U"ence", U"", Cond::kGreater1},
      {U"er", U"", Cond::kGreater1},   {U"ic", U"", Cond::kGreater1},   {U"able", U"", Cond::kGreater1},
      {U"ible", U"", Cond::kGreater1}, {U"ant", U"", Cond::kGreater1},  {U"ement", U"", Cond::kGreater1},
      {U"ment", U"", Cond::kGreater1}, {U"ent", U"", Cond::kGreater1},  {U"ion", U"", Cond::kIonStem},
      {U"ou", U"", Cond::kGreater1},   {U"ism", U"", Cond::kGreater1},  {U"ate", U"", Cond::kGreater1},
      {U"iti", U"", Cond::kGreater1},  {U"ous", U"", Cond::kGreater1},  {U"ive", U"", Cond::kGreater1},
      {U"ize", U"", Cond::kGreater1}};
  return apply_rules(w, rules);
}

Word step5a(const Word& w) {
  if (!ends_with(w, U"e")) return w;
  Word stem = drop(w, 1);
  const int m = measure(stem);
  if (m > 1 || (m == 1 && !ends_cvc(stem))) return stem;
  return w;
}

Word step5b(const Word& w) {
  if (ends_with(w, U"ll") && measure(drop(w, 1)) > 1) return drop(w, 1);
  return w;
}

const std::unordered_map<std::u32string, std::u32string>& irregular_forms() {
  static const auto* table = new std::unordered_map<std::u32string, std::u32string>{
      {U"sky", U"sky"},         {U"skies", U"sky"},     {U"dying", U"die"},         {U"lying", U"lie"},
      {U"tying", U"tie"},       {U"news", U"news"},     {U"innings", U"inning"},    {U"inning", U"inning"},
      {U"outings", U"outing"},  {U"outing", U"outing"}, {U"cannings", U"canning"},  {U"canning", U"canning"},
      {U"howe", U"howe"},       {U"proceed", U"proceed"}, {U"exceed", U"exceed"},   {U"succeed", U"succeed"}};
  return *table;
}

}  // namespace

std::u32string porter_stem(std::u32string_view word) {
  Word w = py_lower(word);
  // nltk looks the *unlowered* word up in the table and checks the length of the unlowered word.
  const auto& pool = irregular_forms();
  if (auto it = pool.find(Word(word)); it != pool.end()) return it->second;
  if (word.size() <= 2) return w;
  w = step1a(w);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = step3(w);
  w = step4(w);
  w = step5a(w);
  w = step5b(w);
  return w;
}

std::string porter_stem_utf8(std::string_view word) { return u32_to_utf8(porter_stem(utf8_to_u32(word))); }

namespace {

struct StemMemo {
  Interner words;                   // views into `storage`
  std::deque<std::string> storage;  // stable addresses
  std::deque<std::string> stems;    // by word id, stable addresses
};

StemMemo& stem_memo() {
  thread_local StemMemo memo;
  return memo;
}

}  // namespace

std::string_view porter_stem_memo(std::string_view utf8_word) {
  StemMemo& memo = stem_memo();
  if (const uint32_t id = memo.words.find(utf8_word); id != Interner::kNone) return memo.stems[id];
  memo.storage.emplace_back(utf8_word);
  memo.words.id(memo.storage.back());
  return memo.stems.emplace_back(porter_stem_utf8(utf8_word));
}

void porter_stem_memo_trim() {
  StemMemo& memo = stem_memo();
  if (memo.stems.size() < (1u << 20)) return;
  memo.words.clear();
  memo.storage.clear();
  memo.stems.clear();
}

}  // namespace ctx::text
