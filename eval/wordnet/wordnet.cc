#include "eval/wordnet/wordnet.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "core/base/error.h"
#include "eval/text/unicode.h"

namespace ctx {
namespace {

constexpr const char* kFileSuffix[4] = {"noun", "verb", "adj", "adv"};

struct Substitution {
  const char* old_suffix;
  const char* new_suffix;
};
const std::vector<Substitution> kRules[4] = {
    {{"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"},
     {"men", "man"}, {"ies", "y"}},
    {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
    {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
    {}};

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open WordNet file '", path, "' (install the Debian package wordnet-base)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

template <class F>
void for_each_line(const std::string& text, F&& f) {
  size_t start = 0, n = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    f(std::string_view(text).substr(start, end - start), ++n);
    start = end + 1;
  }
}

uint64_t parse_uint(std::string_view s, int base, const std::string& where) {
  uint64_t v = 0;
  if (s.empty()) fail(where, ": expected a number");
  for (char c : s) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 99;
    if (d >= base) fail(where, ": bad number '", std::string(s), "'");
    v = v * uint64_t(base) + uint64_t(d);
  }
  return v;
}

}  // namespace

WordNet::WordNet(const std::string& dir) : dir_(dir) {
  for (int p = 0; p < 4; ++p) {
    const std::string index_path = dir + "/index." + kFileSuffix[p];
    const std::string index = read_whole(index_path);
    for_each_line(index, [&](std::string_view line, size_t n) {
      if (line.empty() || line[0] == ' ') return;  // license header
      const auto f = fields(line);
      const std::string where = str_cat(index_path, ":", n);
      if (f.size() < 4) fail(where, ": malformed index line");
      const size_t n_synsets = parse_uint(f[2], 10, where), n_pointers = parse_uint(f[3], 10, where);
      const size_t first = 4 + n_pointers + 2;
      if (f.size() < first + n_synsets) fail(where, ": malformed index line");
      auto& offsets = index_[std::string(f[0])][size_t(p)];
      offsets.clear();
      for (size_t i = 0; i < n_synsets; ++i) offsets.push_back(uint32_t(parse_uint(f[first + i], 10, where)));
    });
    const std::string exc = read_whole(dir + "/" + kFileSuffix[p] + ".exc");
    for_each_line(exc, [&](std::string_view line, size_t) {
      const auto f = fields(line);
      if (f.empty()) return;
      exceptions_[size_t(p)][std::string(f[0])] = std::vector<std::string>(f.begin() + 1, f.end());
    });
    data_[size_t(p)] = read_whole(dir + "/data." + kFileSuffix[p]);
  }
}

const WordNet& WordNet::shared(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<WordNet>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = loaded[dir];
  if (!slot) slot = std::make_unique<WordNet>(dir);
  return *slot;
}

std::vector<std::string> WordNet::morphy(const std::string& form, Pos pos) const {
  const auto& rules = kRules[pos];
  auto apply_rules = [&](const std::vector<std::string>& forms) {
    std::vector<std::string> out;
    for (const auto& f : forms)
      for (const auto& r : rules) {
        const std::string_view old_suffix = r.old_suffix;
        if (f.size() >= old_suffix.size() && std::string_view(f).substr(f.size() - old_suffix.size()) == old_suffix)
          out.push_back(f.substr(0, f.size() - old_suffix.size()) + r.new_suffix);
      }
    return out;
  };
  auto filter = [&](const std::vector<std::string>& forms) {
    std::vector<std::string> out;
    for (const auto& f : forms) {
      auto it = index_.find(f);
      if (it == index_.end() || it->second[pos].empty()) continue;
      if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    }
    return out;
  };
  if (auto it = exceptions_[pos].find(form); it != exceptions_[pos].end()) {
    std::vector<std::string> forms{form};
    forms.insert(forms.end(), it->second.begin(), it->second.end());
    return filter(forms);
  }
  std::vector<std::string> forms = apply_rules({form});
  std::vector<std::string> first{form};
  first.insert(first.end(), forms.begin(), forms.end());
  if (auto r = filter(first); !r.empty()) return r;
  while (!forms.empty()) {
    forms = apply_rules(forms);
    if (auto r = filter(forms); !r.empty()) return r;
  }
  return {};
}

std::vector<std::string> WordNet::synset_lemmas(Pos pos, uint32_t offset) const {
  const std::string& data = data_[pos];
  const std::string where = str_cat(dir_, "/data.", kFileSuffix[pos], " offset ", offset);
  if (offset >= data.size()) fail(where, ": past the end of the file");
  const size_t end = data.find('\n', offset);
  const auto f = fields(std::string_view(data).substr(offset, end == std::string::npos ? std::string::npos : end - offset));
  if (f.size() < 4 || parse_uint(f[0], 10, where) != offset) fail(where, ": not a synset line");
  const size_t w_cnt = parse_uint(f[3], 16, where);
  if (f.size() < 4 + 2 * w_cnt) fail(where, ": malformed synset line");
  std::vector<std::string> out;
  for (size_t i = 0; i < w_cnt; ++i) {
    std::string name(f[4 + 2 * i]);
    // nltk: re.match(r"(.*?)(\(.*\))?$") drops an adjective marker such as "(a)", "(ip)".
    if (!name.empty() && name.back() == ')')
      if (size_t p = name.find('('); p != std::string::npos && p + 1 < name.size()) name.resize(p);
    out.push_back(std::move(name));
  }
  return out;
}

const std::vector<std::string>& WordNet::synonyms(std::string_view word) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (const uint32_t id = memo_words_.find(word); id != text::Interner::kNone) return memo_synonyms_[id];
  const std::string lemma = text::u32_to_utf8(text::py_lower(text::utf8_to_u32(word)));
  std::vector<std::string> names;
  for (int p = 0; p < 4; ++p)
    for (const auto& form : morphy(lemma, Pos(p)))
      for (uint32_t offset : index_.at(form)[size_t(p)])
        for (auto& n : synset_lemmas(Pos(p), offset)) names.push_back(std::move(n));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  memo_words_.id(memo_storage_.emplace_back(word));
  return memo_synonyms_.emplace_back(std::move(names));
}

}  // namespace ctx
