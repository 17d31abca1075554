#include "core/io/json_object.h"

#include "core/base/error.h"

namespace ctx {

nlohmann::json parse_json_object(std::string_view text, const std::string& where) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(where, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(where, ": expected a JSON object, got ", j.type_name());
  return j;
}

}  // namespace ctx
