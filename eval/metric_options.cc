#include "eval/metric_options.h"

#include <nlohmann/json.hpp>

#include "core/base/error.h"

namespace ctx {
namespace {

const nlohmann::json* find_option(const nlohmann::json& options, std::string_view key, std::string_view metric) {
  if (options.is_null()) return nullptr;
  if (!options.is_object()) fail("metric '", metric, "': options must be a JSON object, got ", options.type_name());
  auto it = options.find(std::string(key));
  return it == options.end() ? nullptr : &*it;
}

[[noreturn]] void wrong_type(std::string_view key, std::string_view metric, const char* expected,
                             const nlohmann::json& v) {
  fail("metric '", metric, "': option '", key, "' must be ", expected, ", got ", v.type_name(), " ", v.dump());
}

}  // namespace

bool option_bool(const nlohmann::json& options, std::string_view key, bool dflt, std::string_view metric) {
  const auto* v = find_option(options, key, metric);
  if (!v) return dflt;
  if (!v->is_boolean()) wrong_type(key, metric, "true or false", *v);
  return v->get<bool>();
}

double option_double(const nlohmann::json& options, std::string_view key, double dflt, std::string_view metric) {
  const auto* v = find_option(options, key, metric);
  if (!v) return dflt;
  if (!v->is_number()) wrong_type(key, metric, "a number", *v);
  return v->get<double>();
}

std::string option_string(const nlohmann::json& options, std::string_view key, const std::string& dflt,
                          std::string_view metric) {
  const auto* v = find_option(options, key, metric);
  if (!v) return dflt;
  if (!v->is_string()) wrong_type(key, metric, "a string", *v);
  return v->get<std::string>();
}

std::optional<std::vector<std::string>> option_string_list(const nlohmann::json& options, std::string_view key,
                                                           std::string_view metric) {
  const auto* v = find_option(options, key, metric);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_array()) wrong_type(key, metric, "a list of strings", *v);
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) wrong_type(key, metric, "a list of strings", *v);
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace ctx
