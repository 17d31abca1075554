// Princeton WordNet 3.0 read from its database files (Debian `wordnet-base`: /usr/share/wordnet
// index.{noun,verb,adj,adv}, data.*, *.exc), answering the lookups nltk 3.8's WordNetCorpusReader
// makes for METEOR:
// * morphy(form, pos): nltk's _morphy -- the exception list first (the form and its listed bases),
//   else the form plus one round of the detachment rules, else further rounds until a round yields
//   forms in the index; only forms indexed for `pos` are returned, in order, without duplicates.
// * synonyms(word): the lemma names (as written in the data files, adjective markers such as "(a)"
//   removed) of every synset of wordnet.synsets(word) over noun, verb, adjective, adverb, where
//   `word` is lowercased with Python str.lower() first.
// Loading throws ctx::Error naming the missing file (and the package to install). After loading,
// every method is thread-safe (synonyms() memoises under a mutex).
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "eval/text/interner.h"

namespace ctx {

class WordNet {
 public:
  enum Pos { kNoun = 0, kVerb = 1, kAdj = 2, kAdv = 3 };

  explicit WordNet(const std::string& dir);
  // One shared instance per directory, loaded on first use.
  static const WordNet& shared(const std::string& dir);

  std::vector<std::string> morphy(const std::string& form, Pos pos) const;
  // Sorted, distinct lemma names.
  const std::vector<std::string>& synonyms(std::string_view word) const;

 private:
  std::vector<std::string> synset_lemmas(Pos pos, uint32_t offset) const;

  std::string dir_;
  std::unordered_map<std::string, std::array<std::vector<uint32_t>, 4>> index_;
  std::array<std::unordered_map<std::string, std::vector<std::string>>, 4> exceptions_;
  std::array<std::string, 4> data_;
  mutable std::mutex mu_;
  // synonyms() memo (METEOR asks ~20 times per comparison): an open-addressing interner over
  // stable storage, looked up by string_view (no std::string built per lookup, no node chains).
  mutable text::Interner memo_words_;                            // views into memo_storage_
  mutable std::deque<std::string> memo_storage_;                 // stable addresses
  mutable std::deque<std::vector<std::string>> memo_synonyms_;  // by word id, stable addresses
};

}  // namespace ctx
