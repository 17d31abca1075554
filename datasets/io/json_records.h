// JSON data files through nlohmann-json, plain or gzip (TextSource): JSON Lines (one object per
// line, blank lines skipped) and whole-file JSON documents. Strings must be valid UTF-8 (the
// parser checks). Errors are ctx::Error "FILE:LINE: what is wrong"; for a whole-file document the
// line is computed from the parser's byte position. Field accessors name the record and key.
// Not thread-safe per reader; the free functions are pure.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "datasets/io/text_source.h"

namespace ctx::data {

// One JSON Lines record: must parse as a JSON object. `where` ("file:12") prefixes errors.
nlohmann::json parse_json_record(std::string_view line, const std::string& where);

class JsonLinesReader {
 public:
  explicit JsonLinesReader(const std::string& path);
  explicit JsonLinesReader(std::unique_ptr<TextSource> source);
  // The next object (blank lines skipped); false at the end. A malformed line throws; the reader
  // stays usable, so a caller may count the error and go on.
  bool next(nlohmann::json& record);
  // "FILE:LINE" of the last record returned (or the last line read, after an error).
  std::string where() const;

 private:
  std::unique_ptr<TextSource> src_;
  std::string line_;
};

// A whole JSON document (e.g. a JSON object of settings).
nlohmann::json read_json_document(const std::string& path);
nlohmann::json parse_json_document(const std::string& text, const std::string& name);

// The elements of a top-level JSON array of objects (HotpotQA's files), each parsed on its own so that
// errors name the line where the element starts and its index ("FILE:LINE (record N): ..."). A syntax error inside an element
// throws for that element and the reader goes on with the next one; a broken array structure
// (no '[', an unterminated string or element, junk between elements) throws and ends the reading.
class JsonArrayReader {
 public:
  explicit JsonArrayReader(const std::string& path);
  JsonArrayReader(std::string name, std::string text);
  bool next(nlohmann::json& record);
  // "FILE:LINE (record N)" of the element last returned (or failed): a file may hold all on one line.
  std::string where() const;
  size_t index() const { return index_; }  // 0-based index of that element

 private:
  std::string name_, text_;
  size_t pos_ = 0, line_ = 1, elem_line_ = 0, index_ = size_t(-1);
  bool done_ = false;
  void skip_space();
};

// Typed fields of a record; `where` names the record in errors ("FILE:LINE", "FILE: record 7").
const std::string& json_string(const nlohmann::json& rec, const char* key, const std::string& where);
// A string field that must not be empty after trimming spaces.
const std::string& json_nonempty_string(const nlohmann::json& rec, const char* key, const std::string& where);
// A list of strings with at least `min_size` entries, none empty after trimming.
std::vector<std::string> json_string_list(const nlohmann::json& rec, const char* key, const std::string& where,
                                          size_t min_size = 1);
// A field that may be missing or null.
std::optional<std::string> json_optional_string(const nlohmann::json& rec, const char* key, const std::string& where);

}  // namespace ctx::data
