// One JSON object from text (a JSON Lines record, a config line): parses `text` and requires an
// object. Errors are one ctx::Error prefixed with `where` (e.g. "cases.jsonl:12"):
// "WHERE: not valid JSON (...)" or "WHERE: expected a JSON object, got array".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ctx {

nlohmann::json parse_json_object(std::string_view text, const std::string& where);

}  // namespace ctx
