// Tokenizers against reference goldens: Llama-2's tokenizer.model vs python sentencepiece 0.1.97,
// and stories260K's tok512.bin vs llama2.c run.c (see the README.md beside each fixture).
#include "core/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "core/tokenizer/llama2c_tokenizer.h"
#include "tests/support/error_of.h"
#include "tests/support/test_paths.h"

namespace ctx {
namespace {

using nlohmann::json;

std::string llama2_model() { return test::shared_path("fixtures/tokenizers/llama2/tokenizer.model"); }
std::string tok512() { return test::shared_path("fixtures/stories260k/tok512.bin"); }

json load_json(const std::string& path) { return json::parse(read_file(path)); }

std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

std::string show(const std::string& s) { return json(s).dump(-1, ' ', true, json::error_handler_t::replace); }

// Concatenation of decode_next over a sequence whose first id is context only.
std::string stream(const Tokenizer& t, int32_t first_prev, std::span<const int32_t> ids) {
  std::string out;
  int32_t prev = first_prev;
  for (int32_t id : ids) {
    out += t.decode_next(prev, id);
    prev = id;
  }
  return out;
}

using test::error_of;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// ---------------------------------------------------------------------------------------------
// sentencepiece (Llama-2 tokenizer.model)

class SentencePieceGoldens : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tok = load_tokenizer(llama2_model()).release();
    goldens = new json(load_json(test::shared_path("fixtures/tokenizers/llama2/goldens.json")));
  }
  static void TearDownTestSuite() {
    delete tok;
    delete goldens;
  }
  static Tokenizer* tok;
  static json* goldens;
};
Tokenizer* SentencePieceGoldens::tok = nullptr;
json* SentencePieceGoldens::goldens = nullptr;

TEST_F(SentencePieceGoldens, ModelFacts) {
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), (*goldens)["conventions"]["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->piece(0), "<unk>");
  EXPECT_EQ(tok->piece(13), "<0x0A>");
  EXPECT_EQ(tok->piece(29871), "\xE2\x96\x81");
}

TEST_F(SentencePieceGoldens, Encode) {
  const json& cases = (*goldens)["encode"];
  ASSERT_EQ(cases.size(), 40u);
  for (const json& c : cases) {
    std::string text = unhex(c["text_hex"].get<std::string>());
    SCOPED_TRACE(show(text));
    ASSERT_EQ(text, c["text"].get<std::string>());
    std::vector<int32_t> ids = ids_of(c["ids"]);
    EXPECT_EQ(tok->encode(text, false), ids);

    std::vector<int32_t> with_bos = {1};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    EXPECT_EQ(tok->encode(text, true), with_bos);
    std::vector<int32_t> with_bos_eos = with_bos;
    with_bos_eos.push_back(2);
    EXPECT_EQ(tok->encode(text, true, true), with_bos_eos);

    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tok->piece(id));
    EXPECT_EQ(pieces, c["pieces"].get<std::vector<std::string>>());

    std::string decoded = c["decoded"].get<std::string>();
    EXPECT_EQ(tok->decode(ids), decoded);
    EXPECT_EQ(c["roundtrip_exact"].get<bool>(), decoded == text);
    // Streaming a prompt from BOS reproduces decode() (all these texts are valid UTF-8).
    EXPECT_EQ(stream(*tok, -1, with_bos), decoded);
  }
}

TEST_F(SentencePieceGoldens, Decode) {
  const json& cases = (*goldens)["decode"];
  ASSERT_EQ(cases.size(), 16u);
  for (const json& c : cases) {
    std::vector<int32_t> ids = ids_of(c["ids"]);
    SCOPED_TRACE(c["ids"].dump());
    std::vector<std::string> pieces;
    for (int32_t id : ids) pieces.push_back(tok->piece(id));
    EXPECT_EQ(pieces, c["pieces"].get<std::vector<std::string>>());
    std::string text = unhex(c["text_hex"].get<std::string>());
    EXPECT_EQ(text, c["text"].get<std::string>());
    EXPECT_EQ(tok->decode(ids), text);
    // Streaming yields raw bytes, so it differs from decode() only where decode() substituted
    // U+FFFD for incomplete UTF-8.
    if (text.find("\xEF\xBF\xBD") == std::string::npos) {
      EXPECT_EQ(stream(*tok, -1, ids), text);
    } else {
      EXPECT_NE(stream(*tok, -1, ids), text);
    }
  }
}

TEST_F(SentencePieceGoldens, StreamingYieldsRawBytes) {
  std::vector<int32_t> ids = {29871, 243, 162, 155, 131};  // "▁" + the bytes of U+1F600
  EXPECT_EQ(stream(*tok, 1, ids), "\xF0\x9F\x98\x80");
  EXPECT_EQ(tok->decode_next(15043, 3186), " world");
  EXPECT_EQ(tok->decode_next(1, 3186), "world");
  EXPECT_EQ(tok->decode_next(-1, 0), " \xE2\x81\x87 ");
  EXPECT_EQ(tok->decode_next(3186, 2), "");
}

TEST_F(SentencePieceGoldens, OutOfRangeIdsThrow) {
  std::vector<int32_t> bad = {15043, 32000};
  EXPECT_NE(error_of([&] { tok->decode(bad); }).find("32000"), std::string::npos);
  EXPECT_NE(error_of([&] { tok->decode_next(1, -1); }).find("-1"), std::string::npos);
  EXPECT_NE(error_of([&] { tok->piece(32000); }).find(llama2_model()), std::string::npos);
}

TEST(SentencePieceTokenizer, RejectsMissingAndCorruptFiles) {
  std::string missing = test::temp_dir() + "/missing.model";
  EXPECT_NE(error_of([&] { load_tokenizer(missing); }).find(missing), std::string::npos);

  std::string garbage = test::temp_dir() + "/garbage.model";
  write_file(garbage, "this is not a protobuf \xFF\xFF\xFF\xFF");
  std::string msg = error_of([&] { load_tokenizer(garbage); });
  EXPECT_NE(msg.find(garbage), std::string::npos) << msg;

  std::string empty = test::temp_dir() + "/empty.model";
  write_file(empty, "");
  msg = error_of([&] { load_tokenizer(empty); });
  EXPECT_NE(msg.find(empty), std::string::npos) << msg;

  std::string truncated = test::temp_dir() + "/truncated.model";
  write_file(truncated, read_file(llama2_model()).substr(0, 1000));
  msg = error_of([&] { load_tokenizer(truncated); });
  EXPECT_NE(msg.find(truncated), std::string::npos) << msg;
}

// ---------------------------------------------------------------------------------------------
// llama2.c tokenizer.bin (stories260K tok512.bin)

class Llama2cGoldens : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    goldens = new json(load_json(test::shared_path("fixtures/stories260k/tokenizer_goldens.json")));
    tok = Llama2cTokenizer::load(tok512(), (*goldens)["vocab_size"].get<int32_t>()).release();
  }
  static void TearDownTestSuite() {
    delete tok;
    delete goldens;
  }
  static Llama2cTokenizer* tok;
  static json* goldens;
};
Llama2cTokenizer* Llama2cGoldens::tok = nullptr;
json* Llama2cGoldens::goldens = nullptr;

TEST_F(Llama2cGoldens, VocabFacts) {
  EXPECT_EQ(tok->kind(), "llama2c");
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->max_token_length(), 7);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->piece(0), "<unk>");
  EXPECT_EQ(tok->piece(1), "\n<s>\n");
  EXPECT_EQ(tok->piece(2), "\n</s>\n");
  EXPECT_EQ(tok->piece(3 + 0x41), "<0x41>");
  EXPECT_EQ(tok->piece(410), " ");
  EXPECT_EQ(tok->score(260), -1.0f);  // BPE pieces score -rank from id 259 on
  EXPECT_EQ(tok->score(410), -151.0f);
  // load_tokenizer picks the same implementation for a non-.model path.
  auto t = load_tokenizer(tok512(), 512);
  EXPECT_EQ(t->kind(), "llama2c");
  EXPECT_EQ(t->encode("Once upon a time", true), (std::vector<int32_t>{1, 403, 407, 261, 378}));
}

TEST_F(Llama2cGoldens, Encode) {
  const json& cases = (*goldens)["encode"];
  ASSERT_EQ(cases.size(), 28u);
  for (const json& c : cases) {
    std::string text = unhex(c["text_hex"].get<std::string>());
    SCOPED_TRACE(show(text));
    EXPECT_EQ(tok->encode(text, true), ids_of(c["ids_bos"]));
    EXPECT_EQ(tok->encode(text, false), ids_of(c["ids_nobos"]));
    EXPECT_EQ(tok->encode(text, true, true), ids_of(c["ids_bos_eos"]));

    std::vector<int32_t> ids_bos = ids_of(c["ids_bos"]);
    std::string decoded = unhex(c["decoded_hex"].get<std::string>());
    EXPECT_EQ(tok->decode(ids_bos), decoded);
    ASSERT_FALSE(ids_bos.empty());
    EXPECT_EQ(stream(*tok, ids_bos[0], std::span(ids_bos).subspan(1)), decoded);
    EXPECT_EQ(c["roundtrip_exact"].get<bool>(), decoded == text);
  }
}

TEST_F(Llama2cGoldens, Decode) {
  const json& cases = (*goldens)["decode"];
  ASSERT_EQ(cases.size(), 14u);
  for (const json& c : cases) {
    std::vector<int32_t> ids = ids_of(c["ids"]);
    SCOPED_TRACE(c["ids"].dump());
    ASSERT_GE(ids.size(), 2u);
    std::string text, printed;
    for (size_t i = 1; i < ids.size(); ++i) {
      std::string piece = tok->decode_next(ids[i - 1], ids[i]);
      text += piece;
      printed += llama2c_printable(piece);
    }
    EXPECT_EQ(text, unhex(c["text_hex"].get<std::string>()));
    EXPECT_EQ(printed, unhex(c["printed_text_hex"].get<std::string>()));
    if (!c["text"].is_null()) {
      EXPECT_EQ(text, c["text"].get<std::string>());
    }
    // decode() treats a leading BOS as context, as the goldens treat every first id.
    if (ids[0] == 1) {
      EXPECT_EQ(tok->decode(ids), text);
    }
  }
}

TEST_F(Llama2cGoldens, DecodeCornerCases) {
  // Without BOS context the leading space stays, and a non-BOS first id is decoded too.
  EXPECT_EQ(tok->decode(std::vector<int32_t>{403, 407}), " Once upon");
  EXPECT_EQ(tok->decode_next(-1, 403), " Once");
  EXPECT_EQ(tok->decode_next(1, 403), "Once");
  EXPECT_EQ(tok->decode_next(1, 3 + 0x41), "A");
  EXPECT_EQ(tok->decode_next(1, 3), "");  // <0x00>: run.c returns the C string "\0"
  EXPECT_EQ(tok->decode(std::vector<int32_t>{}), "");
  EXPECT_EQ(llama2c_printable("\x80"), "");
  EXPECT_EQ(llama2c_printable("\x07"), "");
  EXPECT_EQ(llama2c_printable("\x0B"), "\x0B");
  EXPECT_EQ(llama2c_printable("\xC3\xA9"), "\xC3\xA9");  // only single bytes are filtered
  EXPECT_NE(error_of([&] { tok->decode_next(1, 512); }).find(tok512()), std::string::npos);
  EXPECT_NE(error_of([&] { tok->decode(std::vector<int32_t>{1, -3}); }).find("-3"), std::string::npos);
}

TEST_F(Llama2cGoldens, EncodeStopsAtNulLikeRunc) {
  using namespace std::string_literals;
  EXPECT_EQ(tok->encode("Lily\0and Ben"s, true), tok->encode("Lily", true));
  EXPECT_EQ(tok->encode("\0abc"s, true), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok->encode("", false, true), (std::vector<int32_t>{2}));
}

// A direct transcription of run.c's encode (quadratic: rescans every pair after each merge),
// used as an oracle for the linked-list/priority-queue implementation on random text.
std::vector<int32_t> runc_encode_reference(const Llama2cTokenizer& t, const std::map<std::string, int32_t>& vocab,
                                           const std::string& text, bool bos, bool eos) {
  auto lookup = [&](const std::string& s) {
    auto it = vocab.find(s);
    return it == vocab.end() ? -1 : it->second;
  };
  std::vector<int32_t> tokens;
  if (bos) tokens.push_back(1);
  if (!text.empty()) tokens.push_back(lookup(" "));
  std::string buf;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((text[i] & 0xC0) != 0x80) buf.clear();
    buf += text[i];
    if (i + 1 < text.size() && (text[i + 1] & 0xC0) == 0x80 && buf.size() < 4) continue;
    int32_t id = lookup(buf);
    if (id != -1) {
      tokens.push_back(id);
    } else {
      for (char ch : buf) tokens.push_back(int32_t(static_cast<unsigned char>(ch)) + 3);
    }
    buf.clear();
  }
  while (true) {
    float best_score = -1e10f;
    int32_t best_id = -1;
    size_t best_idx = 0;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      int32_t id = lookup(t.piece(tokens[i]) + t.piece(tokens[i + 1]));
      if (id != -1 && t.score(id) > best_score) {
        best_score = t.score(id);
        best_id = id;
        best_idx = i;
      }
    }
    if (best_id == -1) break;
    tokens[best_idx] = best_id;
    tokens.erase(tokens.begin() + std::ptrdiff_t(best_idx) + 1);
  }
  if (eos) tokens.push_back(2);
  return tokens;
}

TEST_F(Llama2cGoldens, MatchesRuncOnRandomText) {
  std::map<std::string, int32_t> vocab;
  for (int32_t id = 0; id < tok->vocab_size(); ++id) {
    ASSERT_TRUE(vocab.emplace(tok->piece(id), id).second) << "duplicate piece " << id;  // oracle assumes none
  }
  // Fragments chosen to hit merges, leftmost-wins ties ("ll", "oo", "pp" are pieces, so "lll"
  // depends on the tie-break), byte fallback, stray/overlong continuation bytes and pieces that
  // look like special entries.
  const std::vector<std::string> frags = {
      "a",  "e",   "t",  "h",    " ",        "  ",       "\n",         "\t",   "the", "Once", "Lily",
      "l",  "o",   "p",  "lll",  "ooooo",    "pp",
      "!",  ".",   ",",  "0",    "7",        "\xC3\xA9", "\xC3\xB1",   "\xE2\x80\x94", "\xE2\x80\xA6",
      "\xE6\x97\xA5",   "\xF0\x9F\x98\x80",  "\xC3\xAF", "\x80",       "\xC3",  "\xE2\x80",
      "\xF0\x9F\x98\x80\x80\x80\x80",        "<0x41>",   "<s>",        "\n<s>\n", "<unk>", "{", "@", "\x7F"};
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 1500; ++iter) {
    std::string text;
    int n = int(rng() % 24);
    for (int k = 0; k < n; ++k) text += frags[rng() % frags.size()];
    SCOPED_TRACE(show(text));
    bool bos = rng() % 2, eos = rng() % 2;
    ASSERT_EQ(tok->encode(text, bos, eos), runc_encode_reference(*tok, vocab, text, bos, eos));
  }
}

TEST_F(Llama2cGoldens, LongTextEncodesAndDecodesBack) {
  // ~200 KB of story-like text with digits, punctuation, newlines and non-ASCII; a quadratic
  // encoder would take minutes here (this is a sanity run, not a timed assertion).
  const std::vector<std::string> words = {"Once", "upon", "a", "time", "there", "was", "little", "girl", "named",
                                          "Lily", "She", "loved", "to", "play", "outside", "in", "the", "park",
                                          "caf\xC3\xA9", "na\xC3\xAFve", "\xE2\x80\x94", "42", "3.14", "\xF0\x9F\x98\x80"};
  const std::vector<std::string> seps = {" ", " ", " ", ", ", ". ", "\n", "  ", "! "};
  std::mt19937 rng(7);
  std::string text;
  while (text.size() < 200 * 1024) text += words[rng() % words.size()] + seps[rng() % seps.size()];
  std::vector<int32_t> ids = tok->encode(text, true);
  EXPECT_LT(ids.size(), text.size());
  EXPECT_EQ(tok->decode(ids), text);
  // Runs of one character also stay fast and exact: "l" merges pairwise into "ll" with equal-score
  // ties everywhere; " " never merges.
  for (char ch : {'l', ' '}) {
    std::string run(100000, ch);
    std::vector<int32_t> run_ids = tok->encode(run, true);
    EXPECT_EQ(tok->decode(run_ids), run);
    if (ch == 'l') {
      EXPECT_EQ(run_ids.size(), 1u + 1u + 50000u);  // BOS, " ", then "ll" x 50000
    }
  }
}

// A synthetic tokenizer.bin for run.c corner cases that tok512.bin does not exercise.
struct Entry {
  float score;
  std::string str;
};

std::string tokenizer_bin(int32_t max_token_length, const std::vector<Entry>& entries) {
  std::string out(4, '\0');
  std::memcpy(out.data(), &max_token_length, 4);
  for (const Entry& e : entries) {
    char head[8];
    int32_t len = int32_t(e.str.size());
    std::memcpy(head, &e.score, 4);
    std::memcpy(head + 4, &len, 4);
    out.append(head, 8);
    out += e.str;
  }
  return out;
}

TEST(Llama2cTokenizer, RuncCornerCases) {
  using namespace std::string_literals;
  std::vector<Entry> v = {{0, "<unk>"}, {0, "\n<s>\n"}, {0, "\n</s>\n"}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    v.push_back({0, name});
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  v.insert(v.end(), {
                        {-1, " "},             // 259
                        {-2, "a"},             // 260
                        {-3, "b"},             // 261
                        {-4, "\n<s>\n "},      // 262: BOS takes part in merges
                        {-1e11f, "ab"},        // 263: at or below -1e10 never merges
                        {nan, "ba"},           // 264: NaN never merges
                        {-5, "c"},             // 265 and 266: a duplicated string
                        {-6, "c"},             // 266
                        {-7, "x\0y"s},         // 267: a C string, so this is "x"
                        {-8, " <0x42>"},       // 268: a byte token only once BOS strips the space
                        {-9, "<0x4"},          // 269: sscanf accepts it: byte 0x04
                        {-10, "<0x41junk"},    // 270: sscanf accepts it: byte 0x41
                        {-1e10f, "bb"},        // 271: exactly run.c's starting best score
                        {-9.9e9f, "aa"},       // 272: just above it
                    });
  std::string path = test::temp_dir() + "/corner.bin";
  write_file(path, tokenizer_bin(9, v));
  auto t = Llama2cTokenizer::load(path, int32_t(v.size()));

  EXPECT_EQ(t->encode("a", true), (std::vector<int32_t>{262, 260}));
  EXPECT_EQ(t->encode("a", false), (std::vector<int32_t>{259, 260}));
  EXPECT_EQ(t->encode("ab", false), (std::vector<int32_t>{259, 260, 261}));
  EXPECT_EQ(t->encode("ba", false), (std::vector<int32_t>{259, 261, 260}));
  EXPECT_EQ(t->encode("bb", false), (std::vector<int32_t>{259, 261, 261}));
  EXPECT_EQ(t->encode("aa", false), (std::vector<int32_t>{259, 272}));
  EXPECT_EQ(t->encode("x", false), (std::vector<int32_t>{259, 267}));
  EXPECT_EQ(t->piece(267), "x");
  EXPECT_EQ(t->encode("z", false), (std::vector<int32_t>{259, 'z' + 3}));  // byte fallback

  // run.c finds strings with bsearch over the vocab sorted by strcmp with qsort (a stable merge
  // sort in glibc); replay that with the C library's own bsearch to see which "c" it finds.
  std::vector<std::pair<const char*, int32_t>> sorted;
  for (int32_t id = 0; id < int32_t(v.size()); ++id) sorted.push_back({v[size_t(id)].str.c_str(), id});
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return std::strcmp(a.first, b.first) < 0; });
  const char* key = "c";
  auto* hit = static_cast<const std::pair<const char*, int32_t>*>(
      std::bsearch(&key, sorted.data(), sorted.size(), sizeof(sorted[0]), [](const void* k, const void* e) {
        return std::strcmp(*static_cast<const char* const*>(k),
                           static_cast<const std::pair<const char*, int32_t>*>(e)->first);
      }));
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(t->encode("c", false), (std::vector<int32_t>{259, hit->second}));

  EXPECT_EQ(t->decode_next(1, 268), "B");
  EXPECT_EQ(t->decode_next(260, 268), " <0x42>");
  EXPECT_EQ(t->decode_next(260, 269), "\x04");
  EXPECT_EQ(t->decode_next(260, 270), "A");
  EXPECT_EQ(t->decode_next(1, 259), "");
}

// --- corrupt / missing tokenizer.bin ---

class Llama2cCorrupt : public ::testing::Test {
 protected:
  std::string original = read_file(tok512());

  // Writes `bytes` to a temp file and returns the ctx::Error message from loading it.
  std::string load_error(const std::string& name, const std::string& bytes, int32_t vocab_size = 512) {
    std::string path = test::temp_dir() + "/" + name;
    write_file(path, bytes);
    std::string msg = error_of([&] { load_tokenizer(path, vocab_size); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    return msg;
  }
  static std::string with_i32(std::string bytes, size_t offset, int32_t v) {
    std::memcpy(bytes.data() + offset, &v, 4);
    return bytes;
  }
};

TEST_F(Llama2cCorrupt, MissingFile) {
  std::string path = test::temp_dir() + "/no_such_tokenizer.bin";
  std::string msg = error_of([&] { load_tokenizer(path, 512); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST_F(Llama2cCorrupt, EmptyFile) {
  EXPECT_NE(load_error("empty.bin", "").find("truncated"), std::string::npos);
}

TEST_F(Llama2cCorrupt, Truncated) {
  // Header only: entry 0 is missing.
  EXPECT_NE(load_error("header_only.bin", original.substr(0, 4)).find("entry 0 "), std::string::npos);
  // Entry 0 is "<unk>" (8 + 5 bytes); cutting inside entry 1's score/length fields.
  EXPECT_NE(load_error("cut_entry1.bin", original.substr(0, 4 + 13 + 6)).find("entry 1 "), std::string::npos);
  // Cutting the last entry's string.
  std::string msg = load_error("cut_last.bin", original.substr(0, original.size() - 1));
  EXPECT_NE(msg.find("entry 511 "), std::string::npos) << msg;
  // A vocab size larger than the file holds reads past its end.
  msg = load_error("tok512_as_1000.bin", original, 1000);
  EXPECT_NE(msg.find("entry 512 "), std::string::npos) << msg;
}

TEST_F(Llama2cCorrupt, BadLengths) {
  std::string msg = load_error("negative_len.bin", with_i32(original, 4 + 4, -5));
  EXPECT_NE(msg.find("entry 0 has negative length -5"), std::string::npos) << msg;
  msg = load_error("huge_len.bin", with_i32(original, 4 + 4, 0x7fffffff));
  EXPECT_NE(msg.find("entry 0 "), std::string::npos) << msg;
  EXPECT_NE(msg.find("2147483647"), std::string::npos) << msg;
  // Entry 0 ("<unk>", 5 bytes) is longer than a header max_token_length of 3.
  msg = load_error("short_max.bin", with_i32(original, 0, 3));
  EXPECT_NE(msg.find("entry 0 "), std::string::npos) << msg;
  msg = load_error("negative_max.bin", with_i32(original, 0, -1));
  EXPECT_NE(msg.find("max_token_length"), std::string::npos) << msg;
}

TEST_F(Llama2cCorrupt, VocabSizeMustBeGiven) {
  std::string msg = error_of([&] { load_tokenizer(tok512()); });
  EXPECT_NE(msg.find(tok512()), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab size"), std::string::npos) << msg;
  msg = error_of([&] { load_tokenizer(tok512(), -512); });
  EXPECT_NE(msg.find(tok512()), std::string::npos) << msg;
}

TEST_F(Llama2cCorrupt, FewerEntriesThanTheFileIgnoresTheRestLikeRunc) {
  auto t = load_tokenizer(tok512(), 300);
  EXPECT_EQ(t->vocab_size(), 300);
  EXPECT_EQ(t->piece(299), Llama2cTokenizer::load(tok512(), 512)->piece(299));
  // " " is id 410, so encoding non-empty text needs the dummy prefix the vocab now lacks.
  EXPECT_NE(error_of([&] { t->encode("a", true); }).find("dummy prefix"), std::string::npos);
}

}  // namespace
}  // namespace ctx
