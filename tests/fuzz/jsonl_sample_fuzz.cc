// libFuzzer target for the JSON Lines sample parser (datasets/io/json_records.h and the LongBench
// v1 / v2 record -> Sample builders). The input is read as a JSON Lines file; each record goes
// through longbench_v1_sample (task multi_news's template) and longbench_v2_sample (the 0shot
// template). Contract: an accepted sample has an id, at least one non-empty reference and a prompt
// that holds its question (v2: unless the question holds a '$' key that pred.py's chained replace
// rewrites); a v2 sample's gold index matches its letter. A rejected line or record
// must throw ctx::Error naming "fuzz.jsonl:LINE"; any other exception escapes and crashes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/base/error.h"
#include "datasets/io/json_records.h"
#include "datasets/longbench/longbench_v1.h"
#include "datasets/longbench/longbench_v2.h"

namespace {

[[noreturn]] void violated(const char* what, const std::string& detail) {
  std::fprintf(stderr, "jsonl_sample_fuzz: contract violated: %s (%s)\n", what, detail.c_str());
  std::abort();
}

void check_error(const ctx::Error& e) {
  if (std::string(e.what()).rfind("fuzz.jsonl:", 0) != 0) violated("error without file:line", e.what());
}

// check_question: false where a chained "$..$" replacement may legitimately rewrite the question.
void check_sample(const ctx::Sample& s, bool check_question = true) {
  if (s.id.empty()) violated("sample without id", s.source);
  if (s.references.empty()) violated("sample without references", s.id);
  for (const auto& r : s.references)
    if (r.empty()) violated("empty reference", s.id);
  if (check_question && s.prompt.find(s.question) == std::string::npos) violated("prompt lacks the question", s.id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ctx::data::LongBenchTask v1 = [] {
    ctx::data::LongBenchTask t;
    t.name = "multi_news";
    t.prompt_template = "News:\n{context}\n\nSummary of {input}:";
    t.max_new_tokens = 512;
    return t;
  }();
  static const std::string v2 = "<text>\n$DOC$\n</text>\nQ: $Q$\n(A) $C_A$\n(B) $C_B$\n(C) $C_C$\n(D) $C_D$\n";
  ctx::data::JsonLinesReader reader(
      ctx::data::TextSource::from_string("fuzz.jsonl", std::string(reinterpret_cast<const char*>(data), size)));
  for (size_t calls = 0; calls <= size + 2; ++calls) {
    nlohmann::json rec;
    try {
      if (!reader.next(rec)) return 0;
    } catch (const ctx::Error& e) {
      check_error(e);
      continue;
    }
    try {
      check_sample(ctx::data::longbench_v1_sample(rec, v1, reader.where()));
    } catch (const ctx::Error& e) {
      check_error(e);
    }
    try {
      const ctx::Sample s = ctx::data::longbench_v2_sample(rec, v2, "0shot", reader.where());
      check_sample(s, s.question.find('$') == std::string::npos);
      if (s.gold_index < 0 || s.gold_index > 3 || s.references[0] != std::string(1, char('A' + s.gold_index)))
        violated("gold index does not match the answer letter", s.id);
    } catch (const ctx::Error& e) {
      check_error(e);
    }
  }
  violated("reader does not make progress", std::to_string(size));
}
