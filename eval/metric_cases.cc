#include "eval/metric_cases.h"

#include <fstream>

#include "core/base/error.h"
#include "core/io/json_object.h"

namespace ctx {

MetricCase parse_metric_case(const std::string& line, const std::string& where) {
  const nlohmann::json j = parse_json_object(line, where);
  MetricCase c;
  auto need_string = [&](const char* key) -> std::string {
    auto it = j.find(key);
    if (it == j.end()) fail(where, ": missing \"", key, "\"");
    if (!it->is_string()) fail(where, ": \"", key, "\" must be a string, got ", it->type_name());
    return it->get<std::string>();
  };
  c.id = need_string("id");
  c.prediction = need_string("prediction");
  auto refs = j.find("references");
  if (refs == j.end()) fail(where, ": missing \"references\"");
  if (!refs->is_array()) fail(where, ": \"references\" must be a list of strings, got ", refs->type_name());
  for (const auto& r : *refs) {
    if (!r.is_string()) fail(where, ": \"references\" must be a list of strings, found ", r.type_name());
    c.references.push_back(r.get<std::string>());
  }
  if (auto o = j.find("options"); o != j.end() && !o->is_null()) {
    if (!o->is_object()) fail(where, ": \"options\" must be an object, got ", o->type_name());
    c.options = *o;
  }
  if (auto e = j.find("expected"); e != j.end() && !e->is_null()) {
    if (!e->is_object()) fail(where, ": \"expected\" must be an object, got ", e->type_name());
    for (const auto& [k, v] : e->items()) {
      if (!v.is_number()) fail(where, ": \"expected\".\"", k, "\" must be a number, got ", v.type_name());
      c.expected.emplace_back(k, v.get<double>());
    }
  }
  return c;
}

std::vector<MetricCase> read_metric_cases(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open metric cases '", path, "'");
  std::vector<MetricCase> cases;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    cases.push_back(parse_metric_case(line, str_cat(path, ":", n)));
    cases.back().line = n;
  }
  if (in.bad()) fail("error reading metric cases '", path, "'");
  return cases;
}

std::string format_score_line(const std::string& id, const Scores& scores) {
  nlohmann::ordered_json j;
  j["id"] = id;
  j["scores"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : scores) j["scores"][k] = v;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ctx
