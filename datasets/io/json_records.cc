#include "datasets/io/json_records.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/io/json_object.h"

namespace ctx::data {

namespace {

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

const nlohmann::json& field(const nlohmann::json& rec, const char* key, const std::string& where) {
  auto it = rec.find(key);
  if (it == rec.end()) fail(where, ": missing field \"", key, "\"");
  return *it;
}

}  // namespace

nlohmann::json parse_json_record(std::string_view line, const std::string& where) {
  return parse_json_object(line, where);
}

JsonLinesReader::JsonLinesReader(const std::string& path) : src_(std::make_unique<TextSource>(path)) {}
JsonLinesReader::JsonLinesReader(std::unique_ptr<TextSource> source) : src_(std::move(source)) {}

bool JsonLinesReader::next(nlohmann::json& record) {
  while (src_->next_line(line_)) {
    if (blank(line_)) continue;
    record = parse_json_record(line_, where());
    return true;
  }
  return false;
}

std::string JsonLinesReader::where() const { return str_cat(src_->name(), ":", src_->line()); }

nlohmann::json parse_json_document(const std::string& text, const std::string& name) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    const size_t pos = std::min<size_t>(e.byte, text.size());
    const size_t line = 1 + size_t(std::count(text.begin(), text.begin() + long(pos ? pos - 1 : 0), '\n'));
    fail(name, ":", line, ": not valid JSON (", e.what(), ")");
  } catch (const nlohmann::json::exception& e) {
    fail(name, ": not valid JSON (", e.what(), ")");
  }
}

nlohmann::json read_json_document(const std::string& path) { return parse_json_document(read_text_file(path), path); }

JsonArrayReader::JsonArrayReader(const std::string& path) : JsonArrayReader(path, read_text_file(path)) {}

JsonArrayReader::JsonArrayReader(std::string name, std::string text) : name_(std::move(name)), text_(std::move(text)) {
  if (text_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
  skip_space();
  if (pos_ >= text_.size() || text_[pos_] != '[') fail(name_, ":", line_, ": expected a JSON array of records");
  ++pos_;
}

void JsonArrayReader::skip_space() {
  while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
    if (text_[pos_] == '\n') ++line_;
    ++pos_;
  }
}

std::string JsonArrayReader::where() const { return str_cat(name_, ":", elem_line_, " (record ", index_, ")"); }

bool JsonArrayReader::next(nlohmann::json& record) {
  if (done_) return false;
  skip_space();
  if (index_ != size_t(-1)) {  // after an element: ',' or ']'
    if (pos_ < text_.size() && text_[pos_] == ',') {
      ++pos_;
      skip_space();
    } else if (pos_ < text_.size() && text_[pos_] == ']') {
      done_ = true;
      return false;
    } else {
      done_ = true;
      fail(name_, ":", line_, ": expected ',' or ']' after array element ", index_);
    }
  } else if (pos_ < text_.size() && text_[pos_] == ']') {
    done_ = true;
    return false;
  }
  // Find the end of the element: brackets balanced outside strings.
  elem_line_ = line_;
  ++index_;
  const size_t start = pos_;
  int depth = 0;
  bool in_string = false;
  for (; pos_ < text_.size(); ++pos_) {
    const char c = text_[pos_];
    if (c == '\n') ++line_;
    if (in_string) {
      if (c == '\\') ++pos_;  // an escaped character (never a newline in valid JSON)
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) break;  // the array's own ']'
      --depth;
    } else if (c == ',' && depth == 0) {
      break;
    }
  }
  if (pos_ >= text_.size()) {
    done_ = true;
    fail(name_, ":", elem_line_, ": unterminated array element ", index_, " (the file ends inside it)");
  }
  record = parse_json_record(std::string_view(text_).substr(start, pos_ - start), where());
  return true;
}

const std::string& json_string(const nlohmann::json& rec, const char* key, const std::string& where) {
  const auto& v = field(rec, key, where);
  if (!v.is_string()) fail(where, ": field \"", key, "\" must be a string, got ", v.type_name());
  return v.get_ref<const std::string&>();
}

const std::string& json_nonempty_string(const nlohmann::json& rec, const char* key, const std::string& where) {
  const auto& s = json_string(rec, key, where);
  if (blank(s)) fail(where, ": field \"", key, "\" is empty");
  return s;
}

std::vector<std::string> json_string_list(const nlohmann::json& rec, const char* key, const std::string& where,
                                          size_t min_size) {
  const auto& v = field(rec, key, where);
  if (!v.is_array()) fail(where, ": field \"", key, "\" must be a list of strings, got ", v.type_name());
  std::vector<std::string> out;
  for (const auto& x : v) {
    if (!x.is_string()) fail(where, ": field \"", key, "\" must be a list of strings, found ", x.type_name());
    if (blank(x.get_ref<const std::string&>())) fail(where, ": field \"", key, "\" has an empty entry");
    out.push_back(x.get<std::string>());
  }
  if (out.size() < min_size) fail(where, ": field \"", key, "\" is empty (needs at least ", min_size, " entries)");
  return out;
}

std::optional<std::string> json_optional_string(const nlohmann::json& rec, const char* key, const std::string& where) {
  auto it = rec.find(key);
  if (it == rec.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) fail(where, ": field \"", key, "\" must be a string or null, got ", it->type_name());
  return it->get<std::string>();
}

}  // namespace ctx::data
