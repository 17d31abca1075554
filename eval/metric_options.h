// Typed access to a case's "options" object (JSON) for metrics. A missing key (or a null/absent
// options object) gives the default; a present key of the wrong type throws ctx::Error naming the
// metric, the key and the expected type. Pure and thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ctx {

bool option_bool(const nlohmann::json& options, std::string_view key, bool dflt, std::string_view metric);
double option_double(const nlohmann::json& options, std::string_view key, double dflt, std::string_view metric);
std::string option_string(const nlohmann::json& options, std::string_view key, const std::string& dflt,
                          std::string_view metric);
// A list of strings, or nullopt when the key is missing or null.
std::optional<std::vector<std::string>> option_string_list(const nlohmann::json& options, std::string_view key,
                                                           std::string_view metric);

}  // namespace ctx
