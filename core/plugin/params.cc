#include "core/plugin/params.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "core/base/error.h"

namespace ctx {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Characters that the spec-text grammar (plugin_spec.h) uses as delimiters; a string value holding
// one could not round-trip through the canonical text.
bool is_structural(char c) { return c == ',' || c == '[' || c == ']' || c == '{' || c == '}'; }
bool is_control(char c) { return (unsigned char)c < 0x20 || c == 0x7f; }

std::string format_double(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  CTX_CHECK(ec == std::errc());
  return std::string(buf, end);
}

std::string format_bound(double v) {
  // Int bounds print as integers ("1048576", not "1.048576e+06").
  if (std::abs(v) < 9.0e15 && v == std::floor(v)) return std::to_string(int64_t(v));
  return format_double(v);
}

std::string range_text(const ParamSpec& s) {
  if (s.min && s.max) return str_cat(" in [", format_bound(*s.min), ", ", format_bound(*s.max), "]");
  if (s.min) return str_cat(" >= ", format_bound(*s.min));
  if (s.max) return str_cat(" <= ", format_bound(*s.max));
  return "";
}

bool in_range(const ParamSpec& s, double v) { return (!s.min || v >= *s.min) && (!s.max || v <= *s.max); }

// Decimal int64 with an optional sign, nothing else. Returns false on junk or overflow.
bool parse_int(std::string_view t, int64_t& out) {
  if (!t.empty() && t.front() == '+') {
    t.remove_prefix(1);
    if (!t.empty() && t.front() == '-') return false;
  }
  if (t.empty()) return false;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return ec == std::errc() && end == t.data() + t.size();
}

[[noreturn]] void bad_value(const ParamSpec& spec, std::string_view text, std::string_view where, std::string_view why) {
  fail(where, ": invalid value ", quote_param_text(text), " for parameter '", spec.name, "' (", why,
       "; allowed: ", spec.allowed(), ")");
}

int64_t parse_checked_int(const ParamSpec& spec, std::string_view item, std::string_view whole, std::string_view where) {
  int64_t v = 0;
  if (!parse_int(item, v)) {
    // Tell "too large" apart from "not a number" for a clearer message.
    std::string_view digits = item;
    if (!digits.empty() && (digits.front() == '+' || digits.front() == '-')) digits.remove_prefix(1);
    const bool all_digits = !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    bad_value(spec, whole, where, all_digits ? "out of range" : item.empty() ? "empty" : "not an integer");
  }
  if (!in_range(spec, double(v))) bad_value(spec, whole, where, "out of range");
  return v;
}

void check_string(const ParamSpec& spec, std::string_view text, std::string_view where) {
  if (text != trim(text)) bad_value(spec, text, where, "leading or trailing space");
  for (char c : text) {
    if (is_structural(c)) bad_value(spec, text, where, str_cat("contains '", c, "'"));
    if (is_control(c)) bad_value(spec, text, where, "contains a control character");
  }
}

// The trimmed elements of a list text: "[a,b]", "[]", "" (JSON [] through Boost.PropertyTree) or a
// bare single element "a".
std::vector<std::string_view> list_items(const ParamSpec& spec, std::string_view text, std::string_view where) {
  std::string_view t = trim(text);
  std::vector<std::string_view> out;
  if (t.empty()) return out;
  if (t.front() != '[') return {t};
  if (t.back() != ']') bad_value(spec, text, where, "missing ']'");
  t = trim(t.substr(1, t.size() - 2));
  if (t.empty()) return out;
  while (true) {
    const size_t comma = t.find(',');
    out.push_back(trim(t.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    t.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

std::string quote_param_text(std::string_view text) {
  constexpr size_t kMax = 120;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const char c = text[i];
    if (is_control(c) || (unsigned char)c >= 0x80) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[(unsigned char)c >> 4];
      out += hex[(unsigned char)c & 15];
    } else {
      out += c;
    }
  }
  out += text.size() > kMax ? "'..." : "'";
  return out;
}

std::string_view param_type_name(ParamType t) {
  switch (t) {
    case ParamType::kInt: return "int";
    case ParamType::kFloat: return "float";
    case ParamType::kBool: return "bool";
    case ParamType::kString: return "string";
    case ParamType::kChoice: return "choice";
    case ParamType::kIntList: return "int list";
    case ParamType::kStringList: return "string list";
  }
  return "?";
}

ParamSpec ParamSpec::Int(std::string name, int64_t dflt, std::optional<double> min, std::optional<double> max,
                         std::string help) {
  return {std::move(name), ParamType::kInt, dflt, min, max, {}, std::move(help)};
}
ParamSpec ParamSpec::Float(std::string name, double dflt, std::optional<double> min, std::optional<double> max,
                           std::string help) {
  return {std::move(name), ParamType::kFloat, dflt, min, max, {}, std::move(help)};
}
ParamSpec ParamSpec::Bool(std::string name, bool dflt, std::string help) {
  return {std::move(name), ParamType::kBool, dflt, {}, {}, {}, std::move(help)};
}
ParamSpec ParamSpec::String(std::string name, std::string dflt, std::string help) {
  return {std::move(name), ParamType::kString, std::move(dflt), {}, {}, {}, std::move(help)};
}
ParamSpec ParamSpec::Choice(std::string name, std::string dflt, std::vector<std::string> choices, std::string help) {
  return {std::move(name), ParamType::kChoice, std::move(dflt), {}, {}, std::move(choices), std::move(help)};
}
ParamSpec ParamSpec::IntList(std::string name, std::vector<int64_t> dflt, std::optional<double> min,
                             std::optional<double> max, std::string help) {
  return {std::move(name), ParamType::kIntList, std::move(dflt), min, max, {}, std::move(help)};
}
ParamSpec ParamSpec::StringList(std::string name, std::vector<std::string> dflt, std::string help) {
  return {std::move(name), ParamType::kStringList, std::move(dflt), {}, {}, {}, std::move(help)};
}

std::string ParamSpec::allowed() const {
  switch (type) {
    case ParamType::kInt: {
      const std::string r = range_text(*this);
      return r.empty() ? "any int" : "int" + r;
    }
    case ParamType::kFloat: {
      const std::string r = range_text(*this);
      return r.empty() ? "any finite float" : "float" + r;
    }
    case ParamType::kBool: return "true|false";
    case ParamType::kString: return "text without , [ ] { }";
    case ParamType::kChoice: {
      std::string s = "one of ";
      for (size_t i = 0; i < choices.size(); ++i) {
        if (i) s += '|';
        s += choices[i];
      }
      return s;
    }
    case ParamType::kIntList: return "list of int" + range_text(*this) + " as [a,b,...]";
    case ParamType::kStringList: return "list of text without , [ ] { } as [a,b,...]";
  }
  return "?";
}

std::string format_param_value(const ParamValue& v) {
  struct Visitor {
    std::string operator()(int64_t x) const { return std::to_string(x); }
    std::string operator()(double x) const { return format_double(x); }
    std::string operator()(bool x) const { return x ? "true" : "false"; }
    std::string operator()(const std::string& x) const { return x; }
    std::string operator()(const std::vector<int64_t>& x) const {
      std::string s = "[";
      for (size_t i = 0; i < x.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(x[i]);
      }
      return s + "]";
    }
    std::string operator()(const std::vector<std::string>& x) const {
      std::string s = "[";
      for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + x[i];
      return s + "]";
    }
  };
  return std::visit(Visitor{}, v);
}

ParamValue parse_param_value(const ParamSpec& spec, std::string_view text, std::string_view where) {
  switch (spec.type) {
    case ParamType::kInt: return parse_checked_int(spec, trim(text), text, where);
    case ParamType::kFloat: {
      std::string_view t = trim(text);
      if (!t.empty() && t.front() == '+') t.remove_prefix(1);
      if (t.empty()) bad_value(spec, text, where, "empty");
      // from_chars also takes "inf" and "nan"; only finite values pass.
      double v = 0;
      auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v, std::chars_format::general);
      if (ec == std::errc::result_out_of_range) bad_value(spec, text, where, "out of range");
      if (ec != std::errc() || end != t.data() + t.size()) bad_value(spec, text, where, "not a number");
      if (!std::isfinite(v)) bad_value(spec, text, where, "not finite");
      if (!in_range(spec, v)) bad_value(spec, text, where, "out of range");
      return v == 0 ? 0.0 : v;  // -0 -> 0: one canonical zero
    }
    case ParamType::kBool: {
      std::string t(trim(text));
      std::transform(t.begin(), t.end(), t.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
      if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
      if (t == "false" || t == "0" || t == "no" || t == "off") return false;
      bad_value(spec, text, where, "not a bool (true/false, 1/0, yes/no, on/off)");
    }
    case ParamType::kString:
      check_string(spec, text, where);
      return std::string(text);
    case ParamType::kChoice:
      if (std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end())
        bad_value(spec, text, where, "not a choice");
      return std::string(text);
    case ParamType::kIntList: {
      std::vector<int64_t> out;
      for (std::string_view item : list_items(spec, text, where)) out.push_back(parse_checked_int(spec, item, text, where));
      return out;
    }
    case ParamType::kStringList: {
      std::vector<std::string> out;
      for (std::string_view item : list_items(spec, text, where)) {
        if (item.empty()) bad_value(spec, text, where, "empty element");
        check_string(spec, item, where);
        out.emplace_back(item);
      }
      return out;
    }
  }
  CTX_CHECK(false, "unknown ParamType");
  return {};
}

namespace {

const ParamValue& value_of(const std::map<std::string, ParamValue>& values, const std::string& name) {
  auto it = values.find(name);
  CTX_CHECK(it != values.end(), "no parameter '", name, "' in this plugin's schema");
  return it->second;
}

template <class T>
const T& typed(const std::map<std::string, ParamValue>& values, const std::string& name, const char* type) {
  const T* v = std::get_if<T>(&value_of(values, name));
  CTX_CHECK(v != nullptr, "parameter '", name, "' is not of type ", type);
  return *v;
}

}  // namespace

int64_t Params::get_int(const std::string& name) const { return typed<int64_t>(values_, name, "int"); }
double Params::get_float(const std::string& name) const { return typed<double>(values_, name, "float"); }
bool Params::get_bool(const std::string& name) const { return typed<bool>(values_, name, "bool"); }
const std::string& Params::get_string(const std::string& name) const {
  return typed<std::string>(values_, name, "string/choice");
}
const std::vector<int64_t>& Params::get_int_list(const std::string& name) const {
  return typed<std::vector<int64_t>>(values_, name, "int list");
}
const std::vector<std::string>& Params::get_string_list(const std::string& name) const {
  return typed<std::vector<std::string>>(values_, name, "string list");
}

Params resolve_params(const ParamSchema& schema, const std::vector<std::pair<std::string, std::string>>& given,
                      std::string_view where) {
  Params p;
  for (const auto& s : schema) p.values_[s.name] = s.default_value;
  std::set<std::string> seen;
  for (const auto& arg : given) {
    const std::string& name = arg.first;  // not a structured binding: lambdas capture it (C++20, clang 14)
    const std::string& text = arg.second;
    auto it = std::find_if(schema.begin(), schema.end(), [&](const ParamSpec& s) { return s.name == name; });
    if (it == schema.end()) {
      std::vector<std::string> names;
      for (const auto& s : schema) names.push_back(s.name);
      std::sort(names.begin(), names.end());
      std::string list;
      for (const auto& n : names) {
        if (!list.empty()) list += ", ";
        list += n;
      }
      fail(where, ": unknown parameter ", quote_param_text(name),
           names.empty() ? std::string(" (it takes no parameters)") : " (parameters: " + list + ")");
    }
    if (!seen.insert(name).second) fail(where, ": parameter '", name, "' given twice");
    p.values_[name] = parse_param_value(*it, text, where);
  }
  return p;
}

}  // namespace ctx
