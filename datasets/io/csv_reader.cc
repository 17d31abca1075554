#include "datasets/io/csv_reader.h"

#include "core/base/error.h"
#include "datasets/io/utf8.h"

namespace ctx::data {

CsvReader::CsvReader(const std::string& path) : src_(std::make_unique<TextSource>(path)) {}
CsvReader::CsvReader(std::unique_ptr<TextSource> source) : src_(std::move(source)) {}

void CsvReader::fail_at(size_t line, const std::string& what) {
  // Skip to the next record so that a caller that counts the error can continue.
  for (int c; (c = src_->get()) >= 0;) {
    if (c == '\n') {
      ++line_;
      break;
    }
  }
  fail(src_->name(), ":", line, ": ", what);
}

bool CsvReader::next(CsvRecord& record) {
  record.fields.clear();
  int c = src_->get();
  if (!started_) {
    started_ = true;
    if (c == 0xEF) {  // byte-order mark EF BB BF
      const int c2 = src_->get(), c3 = src_->get();
      if (c2 != 0xBB || c3 != 0xBF) fail_at(line_, "invalid UTF-8 at the start of the file");
      c = src_->get();
    }
  }
  while (c == '\n' || c == '\r') {  // blank lines
    if (c == '\n') ++line_;
    c = src_->get();
  }
  if (c < 0) return false;
  record.line = line_;
  std::string field;
  auto finish_field = [&] {
    if (const size_t bad = invalid_utf8_offset(field); bad != std::string_view::npos) {
      const std::string what = str_cat("field ", record.fields.size() + 1, ": invalid UTF-8 at byte ", bad);
      if (c == ',') fail_at(line_, what);  // skips the rest of the record
      const size_t line = line_;
      if (c == '\n') ++line_;  // the record ends here: the next one starts on the next line
      fail(src_->name(), ":", line, ": ", what);
    }
    record.fields.push_back(std::move(field));
    field.clear();
  };
  while (true) {
    if (c == '"' && field.empty()) {  // quoted field
      const size_t open_line = line_;
      while (true) {
        c = src_->get();
        if (c < 0) fail(src_->name(), ":", open_line, ": unterminated quoted field (opened on this line)");
        if (c == '"') {
          c = src_->get();
          if (c != '"') break;  // closing quote; c is the byte after it
        } else if (c == '\n') {
          ++line_;
        }
        field.push_back(char(c));
      }
      if (c == '\r') c = src_->get();
      if (c != ',' && c != '\n' && c >= 0)
        fail_at(line_, str_cat("field ", record.fields.size() + 1, ": unexpected character after closing quote"));
    } else {
      while (c >= 0 && c != ',' && c != '\n') {
        field.push_back(char(c));
        c = src_->get();
      }
      if (!field.empty() && field.back() == '\r' && c != ',') field.pop_back();
    }
    finish_field();
    if (c == ',') {
      c = src_->get();
      continue;
    }
    if (c == '\n') ++line_;
    return true;  // end of line or of input
  }
}

std::vector<size_t> csv_columns(const CsvRecord& header, const std::vector<std::string>& required,
                                const std::string& file) {
  std::vector<size_t> out;
  for (const auto& name : required) {
    size_t i = 0;
    while (i < header.fields.size() && header.fields[i] != name) ++i;
    if (i == header.fields.size()) fail(file, ":", header.line, ": header has no column '", name, "'");
    out.push_back(i);
  }
  return out;
}

}  // namespace ctx::data
