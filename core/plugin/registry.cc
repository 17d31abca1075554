#include "core/plugin/registry.h"

#include <algorithm>
#include <boost/property_tree/ptree.hpp>
#include <sstream>

#include "core/base/error.h"

namespace ctx {
namespace {

using boost::property_tree::ptree;

bool is_word(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

// "eager, sdpa" (registration order), or "none".
std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += ", ";
    s += n;
  }
  return s.empty() ? "none" : s;
}

// A parameter's text from a config node: a plain value, or a JSON array of plain values as "[a,b]".
std::string value_text(const ptree& node, const std::string& name) {
  if (node.empty()) return node.data();
  std::string s = "[";
  for (const auto& [k, v] : node) {
    if (!k.empty() || !v.empty())
      fail("parameter '", name, "' must be a value or a list of values, not an object");
    if (s.size() > 1) s += ',';
    s += v.data();
  }
  return s + "]";
}

}  // namespace

std::vector<std::string> RegistryBase::names() const {
  std::vector<std::string> out;
  for (const auto& i : infos_) out.push_back(i.name);
  return out;
}

const PluginInfo* RegistryBase::find(std::string_view name) const {
  for (const auto& i : infos_)
    if (i.name == name) return &i;
  return nullptr;
}

const PluginInfo& RegistryBase::get(std::string_view name) const {
  if (const PluginInfo* i = find(name)) return *i;
  fail("unknown ", kind_, " plugin ", quote_param_text(name), " (known: ", join_names(names()), ")");
}

namespace {

// The one place where spec pieces become a validated PluginSpec (text and config paths alike).
PluginSpec make_spec(const RegistryBase& reg, const PluginSpecText& t) {
  const PluginInfo& info = reg.get(t.name);
  const std::string where = str_cat(reg.kind(), " plugin '", info.name, "'");
  if (t.version && *t.version != info.version)
    fail(where, ": version ", *t.version, " was asked for but the registered version is ", info.version);
  return PluginSpec{reg.kind(), info.name, info.version, resolve_params(info.schema, t.args, where)};
}

}  // namespace

PluginSpec RegistryBase::resolve(std::string_view text) const {
  return make_spec(*this, parse_plugin_spec_text(text, str_cat(kind_, " plugin")));
}

PluginSpec RegistryBase::resolve(const ptree& config, const std::string& key, const std::string& source,
                                 const ptree* sections) const {
  if (!sections) sections = &config;
  try {
    const size_t n = config.count(key);
    if (n == 0) fail("missing (known ", kind_, " plugins: ", join_names(names()), ")");
    if (n > 1) fail("given ", n, " times");
    const ptree& node = config.find(key)->second;
    PluginSpecText t;
    if (node.empty()) {
      t = parse_plugin_spec_text(node.data(), str_cat(kind_, " plugin"));
    } else {  // JSON {"name": "flex", "window": 256} (or an INI section [attention] with name = flex)
      if (node.count("name") != 1)
        fail("expected a plugin name, a spec text or an object with one \"name\" and its parameters");
      const ptree& name = node.find("name")->second;
      if (!name.empty()) fail("\"name\" must be a plugin name or spec text");
      t = parse_plugin_spec_text(name.data(), str_cat(kind_, " plugin"));
      for (const auto& [k, v] : node)
        if (k != "name") t.args.emplace_back(k, value_text(v, k));
    }
    const size_t given = t.args.size();
    const std::string section = key + "." + t.name;
    if (sections->count(section) > 1) fail("section [", section, "] given more than once");
    if (auto it = sections->find(section); it != sections->not_found()) {
      if (it->second.empty() && !it->second.data().empty())
        fail("'", section, "' must be a section of parameters, not a value");
      for (const auto& [k, v] : it->second) {
        for (size_t i = 0; i < given; ++i)
          if (t.args[i].first == k)
            fail("parameter '", k, "' of ", kind_, " plugin '", t.name, "' is given both with '", key,
                 "' and in section [", section, "]");
        t.args.emplace_back(k, value_text(v, k));
      }
    }
    return make_spec(*this, t);
  } catch (const Error& e) {
    fail(source, ": ", key, ": ", e.what());
  }
}

std::string RegistryBase::describe() const {
  std::ostringstream os;
  os << kind_ << " plugins (" << infos_.size() << "):\n";
  if (infos_.empty()) os << "    (none registered yet)\n";
  for (const auto& info : infos_) {
    os << "\n" << info.name << "@" << info.version << "  " << info.help << "\n";
    if (info.schema.empty()) {
      os << "    (no parameters)\n";
      continue;
    }
    struct Row {
      std::string cells[5];
    };
    std::vector<Row> rows{{{"parameter", "type", "default", "allowed", "help"}}};
    for (const auto& p : info.schema) {
      std::string dflt = format_param_value(p.default_value);
      if (dflt.empty()) dflt = "''";
      rows.push_back({{p.name, std::string(param_type_name(p.type)), dflt, p.allowed(), p.help}});
    }
    size_t width[4] = {};
    for (const auto& r : rows)
      for (int c = 0; c < 4; ++c) width[c] = std::max(width[c], r.cells[c].size());
    for (const auto& r : rows) {
      std::string line = "    ";
      for (int c = 0; c < 4; ++c) line += r.cells[c] + std::string(width[c] - r.cells[c].size() + 2, ' ');
      line += r.cells[4];
      while (!line.empty() && line.back() == ' ') line.pop_back();
      os << line << "\n";
    }
  }
  return os.str();
}

void RegistryBase::add_info(PluginInfo info) {
  CTX_CHECK(is_word(info.name), kind_, " plugin name '", info.name, "' must be [A-Za-z0-9_-]+");
  CTX_CHECK(find(info.name) == nullptr, kind_, " plugin '", info.name, "' registered twice");
  CTX_CHECK(info.version >= 1, kind_, " plugin '", info.name, "': version must be >= 1");
  const std::string where = str_cat(kind_, " plugin '", info.name, "'");
  for (size_t i = 0; i < info.schema.size(); ++i) {
    const ParamSpec& p = info.schema[i];
    CTX_CHECK(is_word(p.name), where, ": parameter name '", p.name, "' must be [A-Za-z0-9_-]+");
    for (size_t j = 0; j < i; ++j) CTX_CHECK(info.schema[j].name != p.name, where, ": parameter '", p.name, "' declared twice");
    // The default must be a value of its type that survives its canonical text (this also checks
    // ranges, choices and string characters).
    try {
      const ParamValue back = parse_param_value(p, format_param_value(p.default_value), where);
      CTX_CHECK(back == p.default_value, where, ": default of '", p.name, "' is not of type ", param_type_name(p.type));
    } catch (const Error& e) {
      CTX_CHECK(false, "default does not validate: ", e.what());
    }
    if (p.type == ParamType::kChoice)
      for (const auto& c : p.choices) {
        ParamSpec as_string = ParamSpec::String(p.name, c, "");
        try {
          parse_param_value(as_string, c, where);
        } catch (const Error& e) {
          CTX_CHECK(false, "choice does not validate: ", e.what());
        }
      }
  }
  infos_.push_back(std::move(info));
}

}  // namespace ctx
