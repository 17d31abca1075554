// Typed plugin parameters (RocksDB-style options): every plugin declares a schema of parameters with
// type, default, allowed range or choices and help; user text ("0.5", "[0,1]", "sliding_window") is
// validated against it into Params. Canonical text of a value parses back to the same value.
// All functions are pure and thread-safe; Params is immutable after resolve_params().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ctx {

enum class ParamType { kInt, kFloat, kBool, kString, kChoice, kIntList, kStringList };

// kInt -> int64_t, kFloat -> double, kBool -> bool, kString/kChoice -> std::string,
// kIntList -> std::vector<int64_t>, kStringList -> std::vector<std::string>.
using ParamValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<std::string>>;

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kInt;
  ParamValue default_value;
  std::optional<double> min, max;    // inclusive bounds (kInt, kFloat; every element of kIntList)
  std::vector<std::string> choices;  // kChoice
  std::string help;

  static ParamSpec Int(std::string name, int64_t dflt, std::optional<double> min, std::optional<double> max,
                       std::string help);
  static ParamSpec Float(std::string name, double dflt, std::optional<double> min, std::optional<double> max,
                         std::string help);
  static ParamSpec Bool(std::string name, bool dflt, std::string help);
  static ParamSpec String(std::string name, std::string dflt, std::string help);
  static ParamSpec Choice(std::string name, std::string dflt, std::vector<std::string> choices, std::string help);
  static ParamSpec IntList(std::string name, std::vector<int64_t> dflt, std::optional<double> min,
                           std::optional<double> max, std::string help);
  static ParamSpec StringList(std::string name, std::vector<std::string> dflt, std::string help);

  // "int in [1, 128]", "one of causal|sliding_window", "list of int >= 0", ... for messages and listings.
  std::string allowed() const;
};

using ParamSchema = std::vector<ParamSpec>;

std::string_view param_type_name(ParamType t);

// Canonical text: ints in decimal, floats in the shortest form that round-trips ("0.5", "1e-06"),
// bools true/false, strings as is, int lists "[0,1]", string lists "[a,b]".
std::string format_param_value(const ParamValue& v);

// Parses `text` as a value of `spec` and checks its range/choices. Accepted text (surrounding spaces
// ignored except for kString/kChoice): kInt decimal with optional sign; kFloat decimal or exponent
// form, finite only; kBool true/false/1/0/yes/no/on/off (any case); kChoice one of `choices` exactly;
// kString any text without , [ ] { } control characters or surrounding spaces (so that it survives
// the canonical spec text); kIntList "[1,2]", "[]" (or "", as JSON [] reads through
// Boost.PropertyTree) or a single int "3"; kStringList the same shapes ("[a,b]", "[]", "", "a"), each
// element trimmed, non-empty and a valid kString.
// Throws ctx::Error naming `where` (e.g. "attention plugin 'flex'"), the parameter, the text and
// what is allowed.
ParamValue parse_param_value(const ParamSpec& spec, std::string_view text, std::string_view where);

// `text` in single quotes for error messages: control and non-ASCII bytes as \xNN, cut after 120
// characters, so that a message stays one readable line whatever the user typed.
std::string quote_param_text(std::string_view text);

// A validated value for every parameter of a schema.
class Params {
 public:
  Params() = default;
  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;  // kString and kChoice
  const std::vector<int64_t>& get_int_list(const std::string& name) const;
  const std::vector<std::string>& get_string_list(const std::string& name) const;
  const std::map<std::string, ParamValue>& values() const { return values_; }
  bool operator==(const Params& o) const { return values_ == o.values_; }

 private:
  friend Params resolve_params(const ParamSchema&, const std::vector<std::pair<std::string, std::string>>&,
                               std::string_view);
  std::map<std::string, ParamValue> values_;
};

// Applies `given` (name, text) pairs over the schema's defaults. An unknown name, a repeated name or
// an invalid value throws ctx::Error naming `where`, the parameter, and the allowed names/values.
Params resolve_params(const ParamSchema& schema, const std::vector<std::pair<std::string, std::string>>& given,
                      std::string_view where);

}  // namespace ctx
