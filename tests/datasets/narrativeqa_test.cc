// NarrativeQA in the official deepmind schema (qaps.csv, documents.csv, third_party/wikipedia/
// summaries.csv, tmp/<id>.content), written by hand because the QA files are not available here, plus
// the real documents.csv and LongBench's narrativeqa.jsonl schema.
#include <gtest/gtest.h>

#include <filesystem>

#include "datasets/io/csv_reader.h"
#include "tests/datasets/dataset_test_util.h"

namespace ctx {
namespace {

const char* kDocumentsHeader =
    "document_id,set,kind,story_url,story_file_size,wiki_url,wiki_title,story_word_count,story_start,story_end\n";

// A small official-layout folder: two test documents (one Latin-1 story) and one train document.
std::string make_official(const std::string& qaps_rows) {
  static int n = 0;
  const std::string dir = test::temp_dir() + "/nqa" + std::to_string(n++);
  std::filesystem::create_directories(dir + "/tmp");
  std::filesystem::create_directories(dir + "/third_party/wikipedia");
  test::write_file(dir + "/documents.csv",
                   std::string(kDocumentsHeader) +
                       "d1,test,gutenberg,http://x/1.txt,100,http://w/1,Tale One,40,CHAPTER I. The,THE END\n"
                       "d2,test,movie,http://x/2.html,90,http://w/2,\"Two, the Film\",30,FADE IN:,FADE OUT.\n"
                       "d3,train,gutenberg,http://x/3.txt,10,http://w/3,Three,5,Once,done.\n");
  test::write_file(dir + "/tmp/d1.content",
                   "Project Gutenberg header\nCHAPTER I. The miller's daughter spun straw.\nShe said \"no\".\n"
                   "THE END\n\nEnd of the Project Gutenberg EBook (THE END of licence)\n");
  test::write_file(dir + "/tmp/d2.content", "<html>FADE IN:\nA caf\xE9 at night.\nFADE OUT.</html>");
  test::write_file(dir + "/third_party/wikipedia/summaries.csv",
                   "document_id,set,summary,summary_tokenized\n"
                   "d1,test,\"A miller's daughter, straw and gold.\",\"a miller 's daughter , straw and gold .\"\n"
                   "d2,test,A film set in a cafe.,a film set in a cafe .\n"
                   "d3,train,Once upon a time.,once upon a time .\n");
  test::write_file(dir + "/qaps.csv",
                   "document_id,set,question,answer1,answer2,question_tokenized,answer1_tokenized,answer2_tokenized\n" +
                       qaps_rows);
  return dir;
}

const std::string kGoodRows =
    "d1,test,What did the daughter spin?,Straw.,straw into gold,what did the daughter spin ?,straw .,straw into gold\n"
    "d3,train,When?,Once,once upon a time,when ?,once,once upon a time\n"
    "d2,test,\"Where is the film set, at night?\",A cafe,In a café,where ?,a cafe,in a cafe\n";

TEST(NarrativeQaOfficial, SummarySetting) {
  const std::string dir = make_official(kGoodRows);
  const auto d = test::load_dataset("narrativeqa:path=" + dir);
  ASSERT_EQ(d.samples.size(), 2u);  // split=test drops d3
  const Sample& s = d.samples[0];
  EXPECT_EQ(s.question, "What did the daughter spin?");
  EXPECT_EQ(s.references, (std::vector<std::string>{"Straw.", "straw into gold"}));
  EXPECT_EQ(s.context, "A miller's daughter, straw and gold.");
  EXPECT_EQ(s.metric, "longbench:metric=qa_f1_score");
  EXPECT_EQ(s.max_new_tokens, 128);
  EXPECT_EQ(s.source, dir + "/qaps.csv:2");
  // LongBench's narrativeqa template (dataset2prompt.json) filled by hand.
  EXPECT_EQ(s.prompt,
            "You are given a story, which can be either a novel or a movie script, and a question. Answer the question "
            "asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nStory: "
            "A miller's daughter, straw and gold.\n\nNow, answer the question based on the story asconcisely as you can, "
            "using a single phrase if possible. Do not provide any explanation.\n\nQuestion: What did the daughter "
            "spin?\n\nAnswer:");
  EXPECT_EQ(d.samples[1].question, "Where is the film set, at night?");
  EXPECT_EQ(test::load_dataset("narrativeqa:split=all,path=" + dir).samples.size(), 3u);
}

TEST(NarrativeQaOfficial, StorySettingCutsBetweenStartAndEnd) {
  const std::string dir = make_official(kGoodRows);
  const auto d = test::load_dataset("narrativeqa:setting=story,path=" + dir);
  ASSERT_EQ(d.samples.size(), 2u);
  EXPECT_EQ(d.samples[0].context,
            "CHAPTER I. The miller's daughter spun straw.\nShe said \"no\".\nTHE END\n\nEnd of the Project Gutenberg "
            "EBook (THE END");  // story_end's last occurrence closes the story
  EXPECT_EQ(d.samples[0].meta.at("story_encoding"), "utf-8");
  EXPECT_EQ(d.samples[0].meta.at("kind"), "gutenberg");
  EXPECT_EQ(d.samples[1].context, "FADE IN:\nA caf\xC3\xA9 at night.\nFADE OUT.");  // Latin-1 story read as such
  EXPECT_EQ(d.samples[1].meta.at("story_encoding"), "latin-1");
}

TEST(NarrativeQaOfficial, MalformedRowsNameQapsLine) {
  const std::string rows = kGoodRows +
                           "d1,test,Empty answer?,,x,q,,x\n"
                           "d1,test,Too few fields,a\n"
                           "d9,test,Unknown document?,a,b,q,a,b\n"
                           "d1,test,Fine again?,yes,yes,q,yes,yes\n";
  const std::string dir = make_official(rows);
  const std::string qaps = dir + "/qaps.csv";
  EXPECT_EQ(test::error_of([&] { test::load_dataset("narrativeqa:path=" + dir); }), qaps + ":5: empty answer (answer1)");
  const auto d = test::load_dataset("narrativeqa:setting=story,skip_bad=true,path=" + dir);
  EXPECT_EQ(d.samples.size(), 3u);
  ASSERT_EQ(d.skipped.size(), 3u);
  EXPECT_EQ(d.skipped[1], qaps + ":6: expected 8 fields, got 4");
  EXPECT_EQ(d.skipped[2], qaps + ":7: document d9 is not in documents.csv");
}

TEST(NarrativeQaOfficial, MissingStoryFileAndMarkers) {
  const std::string dir = make_official(kGoodRows);
  std::filesystem::remove(dir + "/tmp/d2.content");
  EXPECT_EQ(test::error_of([&] { test::load_dataset("narrativeqa:setting=story,path=" + dir); }),
            dir + "/qaps.csv:4: story file '" + dir + "/tmp/d2.content' is missing");
  test::write_file(dir + "/tmp/d2.content", "no markers here");
  EXPECT_EQ(test::error_of([&] { test::load_dataset("narrativeqa:setting=story,path=" + dir); }),
            dir + "/tmp/d2.content: story_start of document d2 not found");
}

TEST(NarrativeQaOfficial, RealDocumentsCsvReads) {
  // The real documents.csv (the one official file present): 1,572 documents, split by `set`.
  const std::string file = test::shared_path("datasets/narrativeqa/documents.csv");
  data::CsvReader reader(file);
  data::CsvRecord header, r;
  ASSERT_TRUE(reader.next(header));
  EXPECT_EQ(header.fields.size(), 10u);
  const auto col = data::csv_columns(header, {"set", "story_start"}, file);
  std::map<std::string, size_t> sets;
  size_t n = 0;
  while (reader.next(r)) {
    ASSERT_EQ(r.fields.size(), 10u) << file << ":" << r.line;
    EXPECT_FALSE(r.fields[col[1]].empty());
    ++sets[r.fields[col[0]]], ++n;
  }
  EXPECT_EQ(n, 1572u);
  EXPECT_EQ(sets["train"], 1102u);
  EXPECT_EQ(sets["valid"], 115u);
  EXPECT_EQ(sets["test"], 355u);
}

TEST(NarrativeQaLongBench, JsonlSchema) {
  const std::string file = test::temp_dir() + "/narrativeqa.jsonl";
  test::write_file(file,
                   "{\"input\": \"Who spun straw?\", \"context\": \"The miller's daughter spun straw.\", \"answers\": "
                   "[\"The miller's daughter\"], \"length\": 5, \"dataset\": \"narrativeqa\", \"language\": \"en\", "
                   "\"all_classes\": null, \"_id\": \"nqa0\"}\n");
  const auto d = test::load_dataset("narrativeqa:source=longbench,path=" + file);
  ASSERT_EQ(d.samples.size(), 1u);
  EXPECT_EQ(d.samples[0].id, "nqa0");
  EXPECT_EQ(d.samples[0].references, std::vector<std::string>{"The miller's daughter"});
  EXPECT_NE(d.samples[0].prompt.find("Story: The miller's daughter spun straw.\n\n"), std::string::npos);
  EXPECT_TRUE(d.samples[0].prompt.ends_with("Question: Who spun straw?\n\nAnswer:"));
}

}  // namespace
}  // namespace ctx
