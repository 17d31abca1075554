#include "core/tokenizer/llama2c_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <queue>

#include "core/base/error.h"
#include "core/base/mapped_file.h"

namespace ctx {
namespace {

constexpr int32_t kBos = 1;
constexpr int32_t kEos = 2;
// run.c starts its best-merge search at this score with a strict '>', so a pair scoring at or
// below it (or NaN) is never merged.
constexpr float kMinMergeScore = -1e10f;

int32_t read_i32(const char* p) {
  int32_t v;
  std::memcpy(&v, p, 4);  // the format is little-endian, as are all hosts we build for
  return v;
}

float read_f32(const char* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// What run.c's decode() returns for an entry (after any BOS space stripping): sscanf decides
// whether it is a byte token, so we call sscanf too rather than re-implement its parsing rules.
std::string render_piece(std::string_view entry) {
  std::string z(entry);
  unsigned char byte = 0;
  if (std::sscanf(z.c_str(), "<0x%02hhX>", &byte) == 1) {
    // run.c returns a pointer into a {byte, '\0'} table, so byte 0 prints as an empty string.
    return byte == 0 ? std::string() : std::string(1, static_cast<char>(byte));
  }
  return z;
}

}  // namespace

std::unique_ptr<Llama2cTokenizer> Llama2cTokenizer::load(const std::string& path, int32_t vocab_size) {
  MappedFile file = MappedFile::open(path);
  return parse({reinterpret_cast<const char*>(file.data()), file.size()}, vocab_size, path);
}

std::unique_ptr<Llama2cTokenizer> Llama2cTokenizer::parse(std::string_view bytes, int32_t vocab_size,
                                                           const std::string& path) {
  if (vocab_size < 3) {
    fail(path, ": llama2.c tokenizer.bin needs the model's vocab size (>= 3, ids 0..2 are <unk>, BOS, EOS), got ",
         vocab_size);
  }
  if (bytes.size() < 4) {
    fail(path, ": truncated tokenizer.bin: ", bytes.size(), " bytes, expected a 4-byte max_token_length header");
  }
  std::unique_ptr<Llama2cTokenizer> t(new Llama2cTokenizer());
  t->path_ = path;
  t->max_token_length_ = read_i32(bytes.data());
  if (t->max_token_length_ <= 0) {
    fail(path, ": corrupt tokenizer.bin: max_token_length is ", t->max_token_length_, ", expected > 0");
  }

  t->offsets_.reserve(size_t(vocab_size) + 1);
  t->scores_.reserve(size_t(vocab_size));
  t->offsets_.push_back(0);
  size_t off = 4;
  for (int32_t i = 0; i < vocab_size; ++i) {
    if (bytes.size() - off < 8) {
      fail(path, ": truncated tokenizer.bin: entry ", i, " of ", vocab_size, " starts at byte ", off,
           " but the file has ", bytes.size(), " bytes (is the vocab size right?)");
    }
    float score = read_f32(bytes.data() + off);
    int32_t len = read_i32(bytes.data() + off + 4);
    off += 8;
    if (len < 0) fail(path, ": corrupt tokenizer.bin: entry ", i, " has negative length ", len);
    if (size_t(len) > bytes.size() - off) {
      fail(path, ": truncated tokenizer.bin: entry ", i, " of ", vocab_size, " has length ", len, " at byte ",
           off, " but only ", bytes.size() - off, " bytes remain");
    }
    // llama2.c's exporter writes the longest entry as max_token_length and run.c sizes its merge
    // buffer from it, so a longer entry means a corrupt file (usually a misaligned length field).
    if (len > t->max_token_length_) {
      fail(path, ": corrupt tokenizer.bin: entry ", i, " has length ", len, ", more than the header's max_token_length ",
           t->max_token_length_);
    }
    std::string_view s = bytes.substr(off, size_t(len));
    s = s.substr(0, s.find('\0'));  // run.c only ever uses the entry as a C string
    off += size_t(len);
    t->arena_.append(s);
    t->offsets_.push_back(t->arena_.size());
    t->scores_.push_back(score);
    t->longest_entry_ = std::max(t->longest_entry_, s.size());
  }

  // run.c looks strings up with bsearch over the vocab qsorted by strcmp. glibc's qsort is a stable
  // merge sort at these sizes, so for a string that occurs more than once the id returned is the
  // one bsearch happens to land on; replay that once per distinct string.
  std::vector<int32_t> order(static_cast<size_t>(vocab_size));
  for (int32_t i = 0; i < vocab_size; ++i) order[size_t(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return t->entry(a) < t->entry(b); });
  t->ids_.reserve(order.size());
  for (size_t k = 0; k < order.size(); ++k) {
    std::string_view key = t->entry(order[k]);
    if (k > 0 && t->entry(order[k - 1]) == key) continue;
    size_t lo = 0, hi = order.size();
    int32_t found = -1;
    while (lo < hi) {  // glibc bsearch
      size_t mid = (lo + hi) / 2;
      int c = key.compare(t->entry(order[mid]));
      if (c < 0) {
        hi = mid;
      } else if (c > 0) {
        lo = mid + 1;
      } else {
        found = order[mid];
        break;
      }
    }
    CTX_CHECK(found >= 0, "bsearch replay missed a vocab string");
    t->ids_.emplace(key, found);
  }

  t->out_.resize(size_t(vocab_size));
  t->out_after_bos_.resize(size_t(vocab_size));
  for (int32_t i = 0; i < vocab_size; ++i) {
    std::string_view e = t->entry(i);
    t->out_[size_t(i)] = render_piece(e);
    t->out_after_bos_[size_t(i)] = !e.empty() && e[0] == ' ' ? render_piece(e.substr(1)) : t->out_[size_t(i)];
  }
  return t;
}

std::string_view Llama2cTokenizer::entry(int32_t id) const {
  return std::string_view(arena_).substr(offsets_[size_t(id)], offsets_[size_t(id) + 1] - offsets_[size_t(id)]);
}

int32_t Llama2cTokenizer::lookup(std::string_view s) const {
  auto it = ids_.find(s);
  return it == ids_.end() ? -1 : it->second;
}

void Llama2cTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size()) fail(path_, ": token id ", id, " is outside the vocab [0, ", vocab_size(), ")");
}

float Llama2cTokenizer::score(int32_t id) const {
  check_id(id);
  return scores_[size_t(id)];
}

std::string Llama2cTokenizer::piece(int32_t id) const {
  check_id(id);
  return std::string(entry(id));
}

std::vector<int32_t> Llama2cTokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  text = text.substr(0, text.find('\0'));  // run.c takes a C string

  // Tokens form a doubly linked list over their initial positions. Merging keeps the left node, so
  // comparing node indices compares current positions, which gives run.c's leftmost tie-break.
  struct Node {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev, next;
  };
  std::vector<Node> nodes;
  nodes.reserve(text.size() + 2);
  auto push = [&](int32_t id) {
    int32_t n = int32_t(nodes.size());
    nodes.push_back({id, n - 1, n + 1});
  };

  if (add_bos) push(kBos);
  if (!text.empty()) {
    int32_t space = lookup(" ");
    if (space < 0) fail(path_, ": cannot encode: the vocab has no \" \" entry for run.c's dummy prefix");
    push(space);
  }
  // One chunk per UTF-8 character: a byte plus the continuation bytes after it, at most 4 bytes.
  for (size_t i = 0; i < text.size();) {
    size_t n = 1;
    while (n < 4 && i + n < text.size() && is_continuation(text[i + n])) ++n;
    std::string_view chunk = text.substr(i, n);
    int32_t id = lookup(chunk);
    if (id >= 0) {
      push(id);
    } else {
      for (char c : chunk) {
        int32_t byte_id = int32_t(static_cast<unsigned char>(c)) + 3;
        if (byte_id >= vocab_size()) {
          fail(path_, ": cannot encode byte 0x", std::hex, int(static_cast<unsigned char>(c)), std::dec,
               ": byte-fallback id ", byte_id, " is outside the vocab of ", vocab_size());
        }
        push(byte_id);
      }
    }
    i += n;
  }
  if (nodes.empty()) return add_eos ? std::vector<int32_t>{kEos} : std::vector<int32_t>{};
  nodes.back().next = -1;

  // Candidate merges, best first: highest score, then leftmost. Entries go stale when either side
  // changes; they are recognised on pop (the pair is no longer adjacent or its ids differ).
  struct Candidate {
    float score;
    int32_t left, right, left_id, right_id, merged;
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score < b.score;
    return a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(worse);
  std::string buf;
  auto consider = [&](int32_t left) {
    int32_t right = nodes[size_t(left)].next;
    if (right < 0) return;
    std::string_view a = entry(nodes[size_t(left)].id), b = entry(nodes[size_t(right)].id);
    if (a.size() + b.size() > longest_entry_) return;
    buf.assign(a);
    buf.append(b);
    int32_t merged = lookup(buf);
    if (merged < 0) return;
    float s = scores_[size_t(merged)];
    if (!(s > kMinMergeScore)) return;
    queue.push({s, left, right, nodes[size_t(left)].id, nodes[size_t(right)].id, merged});
  };
  for (int32_t i = 0; i + 1 < int32_t(nodes.size()); ++i) consider(i);

  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    Node& l = nodes[size_t(c.left)];
    if (l.id != c.left_id || l.next != c.right || nodes[size_t(c.right)].id != c.right_id) continue;
    Node& r = nodes[size_t(c.right)];
    l.id = c.merged;
    l.next = r.next;
    if (r.next >= 0) nodes[size_t(r.next)].prev = c.left;
    r.id = -1;
    if (l.prev >= 0) consider(l.prev);
    consider(c.left);
  }

  std::vector<int32_t> out;
  for (int32_t i = 0; i >= 0; i = nodes[size_t(i)].next) out.push_back(nodes[size_t(i)].id);
  if (add_eos) out.push_back(kEos);
  return out;
}

const std::string& Llama2cTokenizer::rendered(int32_t prev, int32_t id) const {
  check_id(id);
  return prev == kBos ? out_after_bos_[size_t(id)] : out_[size_t(id)];
}

std::string Llama2cTokenizer::decode_next(int32_t prev, int32_t id) const { return rendered(prev, id); }

std::string Llama2cTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  int32_t prev = -1;
  size_t start = 0;
  if (!ids.empty() && ids[0] == kBos) {
    prev = kBos;
    start = 1;
  }
  for (size_t i = start; i < ids.size(); ++i) {
    out += rendered(prev, ids[i]);
    prev = ids[i];
  }
  return out;
}

std::string_view llama2c_printable(std::string_view piece) {
  if (piece.size() == 1) {
    auto c = static_cast<unsigned char>(piece[0]);
    bool printable = c >= 0x20 && c <= 0x7E;              // isprint, C locale
    bool space = c == ' ' || (c >= '\t' && c <= '\r');  // isspace, C locale
    if (!printable && !space) return {};
  }
  return piece;
}

}  // namespace ctx
