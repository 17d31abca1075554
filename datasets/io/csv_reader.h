// RFC 4180 CSV records from a TextSource (plain or gzip): fields separated by ',', records by
// "\n" or "\r\n"; a field in double quotes may hold ',', '"' (doubled) and line breaks. Every field
// must be valid UTF-8. Blank lines between records are skipped (as Python's csv module does).
// A UTF-8 byte-order mark at the start of the input is dropped.
// A '"' inside a field that does not start with one is kept as a literal character, as Python's csv
// module and pandas read it (real MMLU files have such fields).
// Errors are ctx::Error "FILE:LINE: what is wrong", LINE being the physical line where it is found:
// text after a closing quote, an unterminated quoted field (named with the line where it opened),
// invalid UTF-8 (with the field number). After an error the reader
// resynchronises at the next line break, so a caller may skip the bad record and go
// on. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "datasets/io/text_source.h"

namespace ctx::data {

struct CsvRecord {
  std::vector<std::string> fields;
  size_t line = 0;  // 1-based physical line where the record starts
};

class CsvReader {
 public:
  explicit CsvReader(const std::string& path);
  explicit CsvReader(std::unique_ptr<TextSource> source);

  // The next record; false at the end of the input. Throws ctx::Error as described above.
  bool next(CsvRecord& record);
  const std::string& name() const { return src_->name(); }

 private:
  [[noreturn]] void fail_at(size_t line, const std::string& what);

  std::unique_ptr<TextSource> src_;
  size_t line_ = 1;      // physical line of the next byte
  bool started_ = false;
};

// Reads a CSV file whose first record is a header and maps each following record by column name.
// Checks that the header holds every name in `required`; returns the column index of each.
std::vector<size_t> csv_columns(const CsvRecord& header, const std::vector<std::string>& required,
                                const std::string& file);

}  // namespace ctx::data
