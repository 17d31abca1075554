// libFuzzer target for the CSV reader (datasets/io/csv_reader.h). The input is read as a CSV file
// through TextSource::from_string. Beyond "no crash, no sanitizer report" it checks the contract:
// every accepted field is valid UTF-8, records start on non-decreasing lines that exist in the input,
// every call makes progress (the loop ends), and a rejected record throws ctx::Error naming the
// file and a line; any other exception escapes and crashes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/base/error.h"
#include "datasets/io/csv_reader.h"
#include "datasets/io/utf8.h"

namespace {

[[noreturn]] void violated(const char* what, const std::string& detail) {
  std::fprintf(stderr, "csv_fuzz: contract violated: %s (%s)\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t lines = size_t(std::count(text.begin(), text.end(), '\n')) + 1;
  ctx::data::CsvReader reader(ctx::data::TextSource::from_string("fuzz.csv", text));
  size_t last_line = 0;
  // Each call consumes at least one byte or ends the input, so size + 2 calls always suffice.
  for (size_t calls = 0; calls <= size + 2; ++calls) {
    ctx::data::CsvRecord rec;
    try {
      if (!reader.next(rec)) return 0;
    } catch (const ctx::Error& e) {
      if (std::string(e.what()).rfind("fuzz.csv:", 0) != 0) violated("error without file:line", e.what());
      continue;
    }
    if (rec.line < last_line || rec.line > lines) violated("record line out of order", std::to_string(rec.line));
    last_line = rec.line;
    if (rec.fields.empty()) violated("record without fields", std::to_string(rec.line));
    for (const auto& f : rec.fields)
      if (ctx::data::invalid_utf8_offset(f) != std::string_view::npos) violated("field is not valid UTF-8", f);
  }
  violated("reader does not make progress", std::to_string(size));
}
