// The readers of datasets/io (CSV, gzip-transparent source, JSON Lines / arrays, UTF-8), prompt
// templates, answer extraction, and malformed rows of real loaders: error naming file and line, or a
// counted skip with skip_bad=true.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "datasets/answer_extraction.h"
#include "datasets/io/csv_reader.h"
#include "datasets/io/json_records.h"
#include "datasets/io/utf8.h"
#include "datasets/longbench/longbench_v2.h"
#include "datasets/prompt_template.h"
#include "tests/datasets/dataset_test_util.h"

namespace ctx {
namespace {

using data::CsvReader;
using data::CsvRecord;
using data::TextSource;
using Fields = std::vector<std::string>;

std::vector<CsvRecord> csv(const std::string& text) {
  CsvReader r(TextSource::from_string("t.csv", text));
  std::vector<CsvRecord> out;
  for (CsvRecord rec; r.next(rec);) out.push_back(rec);
  return out;
}

TEST(Csv, Rfc4180Quoting) {
  const auto recs = csv("a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",,x\n\nlast,\"\"");
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[0].fields, (Fields{"a", "b,c", "say \"hi\""}));
  EXPECT_EQ(recs[0].line, 1u);
  EXPECT_EQ(recs[1].fields, (Fields{"multi\nline", "", "x"}));
  EXPECT_EQ(recs[1].line, 2u);
  EXPECT_EQ(recs[2].fields, (Fields{"last", ""}));
  EXPECT_EQ(recs[2].line, 5u);  // after the blank line 4
}

TEST(Csv, ByteOrderMarkAndTrailingComma) {
  const auto recs = csv("\xEF\xBB\xBFh1,h2,\n1,2,\n");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0].fields, (Fields{"h1", "h2", ""}));
}

TEST(Csv, ErrorsNameFileAndLineAndTheReaderResynchronises) {
  CsvReader r(TextSource::from_string("bad.csv", "ok,1\n\"closed\"junk,2\nnext,3\nbad\xFF,4\nfine,5\n\"open,6\n"));
  CsvRecord rec;
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(test::error_of([&] { r.next(rec); }), "bad.csv:2: field 1: unexpected character after closing quote");
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec.fields, (Fields{"next", "3"}));
  EXPECT_EQ(rec.line, 3u);
  EXPECT_EQ(test::error_of([&] { r.next(rec); }), "bad.csv:4: field 1: invalid UTF-8 at byte 3");
  ASSERT_TRUE(r.next(rec));
  EXPECT_EQ(rec.fields, (Fields{"fine", "5"}));
  EXPECT_EQ(test::error_of([&] { r.next(rec); }), "bad.csv:6: unterminated quoted field (opened on this line)");
  EXPECT_FALSE(r.next(rec));
}

TEST(Utf8, StrictValidation) {
  EXPECT_EQ(data::invalid_utf8_offset("plain \xC3\xA9 \xE2\x80\x94 \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(data::invalid_utf8_offset("ab\xC0\xAF"), 2u);          // overlong '/'
  EXPECT_EQ(data::invalid_utf8_offset("\xED\xA0\x80"), 0u);        // surrogate
  EXPECT_EQ(data::invalid_utf8_offset("x\xF4\x90\x80\x80"), 1u);   // above U+10FFFF
  EXPECT_EQ(data::invalid_utf8_offset("\xE2\x80"), 0u);            // truncated
  EXPECT_EQ(data::latin1_to_utf8("caf\xE9"), "caf\xC3\xA9");
}

TEST(TextSource, GzipIsReadTransparentlyAndCorruptionIsAnError) {
  const std::string dir = test::temp_dir();
  const std::string gz = dir + "/lines.txt.gz";
  gzFile f = gzopen(gz.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string text = "first line\r\nsecond\n\nfourth";
  gzwrite(f, text.data(), unsigned(text.size()));
  gzclose(f);
  TextSource src(gz);
  std::string line;
  std::vector<std::string> lines;
  while (src.next_line(line)) lines.push_back(line);
  EXPECT_EQ(lines, (Fields{"first line", "second", "", "fourth"}));
  EXPECT_EQ(src.line(), 4u);

  std::string bytes = data::read_text_file(gz);
  EXPECT_EQ(bytes, text);
  // Cut the compressed file short: reading must fail with the file name, not crash or stop silently.
  std::string raw;
  {
    std::ifstream in(gz, std::ios::binary);
    raw.assign(std::istreambuf_iterator<char>(in), {});
  }
  test::write_file(dir + "/cut.gz", raw.substr(0, raw.size() / 2));
  const std::string msg = test::error_of([&] { data::read_text_file(dir + "/cut.gz"); });
  EXPECT_NE(msg.find(dir + "/cut.gz: cannot read"), std::string::npos) << msg;
  EXPECT_NE(test::error_of([&] { TextSource s(dir + "/missing.jsonl"); }).find("cannot open"), std::string::npos);
}

TEST(JsonRecords, LinesAndArraysNameTheLine) {
  data::JsonLinesReader lines(TextSource::from_string("x.jsonl", "{\"a\": 1}\n\n{\"a\": \n[1]\n{\"a\": \"\xFF\"}\n{\"a\": 4}\n"));
  nlohmann::json rec;
  ASSERT_TRUE(lines.next(rec));
  EXPECT_EQ(rec["a"], 1);
  EXPECT_NE(test::error_of([&] { lines.next(rec); }).find("x.jsonl:3: not valid JSON"), std::string::npos);
  EXPECT_EQ(test::error_of([&] { lines.next(rec); }), "x.jsonl:4: expected a JSON object, got array");
  EXPECT_NE(test::error_of([&] { lines.next(rec); }).find("x.jsonl:5: not valid JSON"), std::string::npos);  // bad UTF-8
  ASSERT_TRUE(lines.next(rec));
  EXPECT_EQ(rec["a"], 4);
  EXPECT_FALSE(lines.next(rec));

  data::JsonArrayReader arr("y.json", "[\n {\"q\": \"a,]\\\"\"},\n {\"q\": [1,\n 2]}, {\"q\" 3},\n {\"q\": 4}\n]");
  ASSERT_TRUE(arr.next(rec));
  EXPECT_EQ(rec["q"], "a,]\"");
  ASSERT_TRUE(arr.next(rec));
  EXPECT_EQ(arr.where(), "y.json:3 (record 1)");
  EXPECT_NE(test::error_of([&] { arr.next(rec); }).find("y.json:4 (record 2): not valid JSON"), std::string::npos);
  ASSERT_TRUE(arr.next(rec));
  EXPECT_EQ(rec["q"], 4);
  EXPECT_EQ(arr.index(), 3u);
  EXPECT_FALSE(arr.next(rec));
  EXPECT_EQ(test::error_of([] { data::JsonArrayReader("z.json", "{\"a\": 1}"); }), "z.json:1: expected a JSON array of records");

  const nlohmann::json obj = {{"s", "  "}, {"l", nlohmann::json::array()}, {"n", 3}};
  EXPECT_EQ(test::error_of([&] { data::json_nonempty_string(obj, "s", "f:9"); }), "f:9: field \"s\" is empty");
  EXPECT_EQ(test::error_of([&] { data::json_string(obj, "n", "f:9"); }), "f:9: field \"n\" must be a string, got number");
  EXPECT_EQ(test::error_of([&] { data::json_string_list(obj, "l", "f:9"); }),
            "f:9: field \"l\" is empty (needs at least 1 entries)");
  EXPECT_EQ(test::error_of([&] { data::json_string(obj, "zz", "f:9"); }), "f:9: missing field \"zz\"");
}

TEST(PromptTemplate, PythonFormatAndChainedReplace) {
  EXPECT_EQ(data::format_named("{{x}} {context}|{input}", {{"context", "C{input}"}, {"input", "I"}}, "t"), "{x} C{input}|I");
  EXPECT_NE(test::error_of([] { data::format_named("{nope}", {}, "tmpl"); }).find("tmpl: template field {nope}"),
            std::string::npos);
  // As pred.py's chained .replace: $Q$ inside the document is replaced too.
  EXPECT_EQ(data::substitute("<$DOC$> $Q$", {{"$DOC$", "d $Q$"}, {"$Q$", "q"}}), "<d q> q");
  EXPECT_EQ(data::strip(" \n x y \t"), "x y");
}

TEST(AnswerExtraction, LongBenchV2AndMmluAndFirstLine) {
  EXPECT_EQ(data::extract_longbench_v2_answer("Thus **The correct answer is (C)**."), 'C');
  EXPECT_EQ(data::extract_longbench_v2_answer("The correct answer is B because"), 'B');
  EXPECT_EQ(data::extract_longbench_v2_answer("the correct answer is (B)"), std::nullopt);  // case-sensitive, as pred.py
  EXPECT_EQ(data::extract_longbench_v2_answer("The correct answer is (E)"), std::nullopt);
  EXPECT_EQ(data::extract_mmlu_letter(" B. paralysis"), 'B');
  EXPECT_EQ(data::extract_mmlu_letter("(D)"), 'D');
  EXPECT_EQ(data::extract_mmlu_letter("I think the answer is c... no, the answer is (A)"), 'A');
  EXPECT_EQ(data::extract_mmlu_letter("Answer: C"), 'C');
  EXPECT_EQ(data::extract_mmlu_letter("A lesion causes"), std::nullopt);
  EXPECT_EQ(data::extract_mmlu_letter("Both are wrong"), std::nullopt);
  EXPECT_EQ(data::first_line("\n\nLOC\nmore"), "LOC");
  EXPECT_EQ(data::first_line("\n"), "");
}

// A temp copy of the MMLU layout with one test file of `rows`.
std::string mmlu_dir(const std::string& rows) {
  const std::string dir = test::temp_dir() + "/mmlu_" + std::to_string(std::hash<std::string>{}(rows));
  std::filesystem::create_directories(dir + "/test");
  test::write_file(dir + "/test/toy_test.csv", rows);
  return dir;
}

TEST(MalformedRows, ErrorNamesFileAndLineOrIsCountedWithSkipBad) {
  const std::string dir = mmlu_dir("Q1,a,b,c,d,A\n\"Q2 bad\"quote,a,b,c,d,B\nQ3,a,b,c,d\nQ4,a,b,c,d,\nQ5 \xFF,a,b,c,d,C\nQ6,a,b,c,d,D\n");
  const std::string file = dir + "/test/toy_test.csv";
  const std::string spec = "mmlu:shots=0,path=" + dir;
  EXPECT_EQ(test::error_of([&] { test::load_dataset(spec); }),
            file + ":2: field 1: unexpected character after closing quote");
  const auto d = test::load_dataset(spec + ",skip_bad=true");
  ASSERT_EQ(d.samples.size(), 2u);
  EXPECT_EQ(d.samples[0].question, "Q1");
  EXPECT_EQ(d.samples[1].question, "Q6");
  EXPECT_EQ(d.samples[1].source, file + ":6");
  ASSERT_EQ(d.skipped.size(), 4u);
  EXPECT_EQ(d.skipped[0], file + ":2: field 1: unexpected character after closing quote");
  EXPECT_EQ(d.skipped[1], file + ":3: expected 6 fields (question, A, B, C, D, answer), got 5");
  EXPECT_EQ(d.skipped[2], file + ":4: empty answer");
  EXPECT_EQ(d.skipped[3], file + ":5: field 1: invalid UTF-8 at byte 3");
  EXPECT_EQ(test::load_dataset(spec + ",skip_bad=true,limit=1").samples.size(), 1u);
}

TEST(MalformedRows, LongBenchJsonLines) {
  const std::string dir = test::temp_dir();
  const std::string file = dir + "/multi_news.jsonl";
  test::write_file(file,
                   "{\"input\": \"\", \"context\": \"c\", \"answers\": [\"s\"], \"length\": 1, \"dataset\": \"multi_news\", "
                   "\"language\": \"en\", \"all_classes\": null, \"_id\": \"a\"}\n"
                   "{\"input\": \"\", \"context\": \"c\", \"answers\": [], \"_id\": \"b\"}\n"
                   "{\"input\": \"\", \"answers\": [\"s\"], \"_id\": \"c\"}\n"
                   "{\"input\": \"\", \"context\": \"c\", \"answers\": [\"s\"], \"_id\": \"d\"\n");
  const std::string spec = "longbench:task=multi_news,path=" + file;
  EXPECT_EQ(test::error_of([&] { test::load_dataset(spec); }), file + ":2: field \"answers\" is empty (needs at least 1 entries)");
  const auto d = test::load_dataset(spec + ",skip_bad=true");
  ASSERT_EQ(d.samples.size(), 1u);
  ASSERT_EQ(d.skipped.size(), 3u);
  EXPECT_EQ(d.skipped[1], file + ":3: missing field \"context\"");
  EXPECT_NE(d.skipped[2].find(file + ":4: not valid JSON"), std::string::npos);
}

TEST(LongBenchV2, AccuracyByDifficultyAndLength) {
  std::vector<Sample> s(3);
  s[0].references = {"A"}, s[0].meta = {{"difficulty", "easy"}, {"length", "short"}};
  s[1].references = {"B"}, s[1].meta = {{"difficulty", "hard"}, {"length", "short"}};
  s[2].references = {"C"}, s[2].meta = {{"difficulty", "hard"}, {"length", "long"}};
  const auto acc = data::longbench_v2_accuracy(s, {'A', std::nullopt, 'C'});
  EXPECT_NEAR(acc.at("overall"), 200.0 / 3, 1e-12);
  EXPECT_EQ(acc.at("easy"), 100.0);
  EXPECT_EQ(acc.at("hard"), 50.0);
  EXPECT_EQ(acc.at("short"), 50.0);
  EXPECT_EQ(acc.at("long"), 100.0);
  EXPECT_EQ(acc.count("medium"), 0u);
}

}  // namespace
}  // namespace ctx
