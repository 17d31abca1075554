// One registry per plugin kind: name -> {version, help, parameter schema, factory}. Filled by
// explicit register_<name>(Catalog&) calls (plugins/register_all.cc), never by static initializers.
// Lookups and creation are thread-safe once registration is done.
#pragma once

#include <boost/property_tree/ptree_fwd.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/plugin/plugin_spec.h"

namespace ctx {

struct PluginInfo {
  std::string name;
  int version = 1;
  std::string help;  // one line
  ParamSchema schema;
};

// The kind-independent part: metadata, spec resolution and listings.
class RegistryBase {
 public:
  explicit RegistryBase(std::string kind) : kind_(std::move(kind)) {}
  virtual ~RegistryBase() = default;

  const std::string& kind() const { return kind_; }
  std::vector<std::string> names() const;                // registration order
  const PluginInfo* find(std::string_view name) const;   // nullptr if unknown
  // Throws ctx::Error "unknown attention plugin 'x' (known: eager, sdpa, ...)".
  const PluginInfo& get(std::string_view name) const;

  // Parses and validates a spec text (see plugin_spec.h). A version in the text must equal the
  // registered one.
  PluginSpec resolve(std::string_view text) const;
  // From a config tree: `key = NAME` (or a full spec text) plus optional parameters in the
  // section `key.NAME` (INI `[attention.flex]`, JSON {"attention": "flex", "attention.flex": {...}}
  // or {"attention": {"name": "flex", "window": 256}}). The section is a child of `sections`
  // (default: `config`) whose key contains the dot literally, as boost's INI parser makes it; pass
  // the root as `sections` when `config` is a subtree such as INI `[run]`. JSON arrays give list
  // values ([0,1] -> "[0,1]"; an empty array reads as "", which an int list takes as []).
  // A parameter given twice (in the spec text or object and in the section) is an error, as is a
  // missing key. Errors name `source` and the key.
  PluginSpec resolve(const boost::property_tree::ptree& config, const std::string& key, const std::string& source,
                     const boost::property_tree::ptree* sections = nullptr) const;

  // Human-readable listing of every plugin: name@version, help, parameters with type, default,
  // allowed values and help.
  std::string describe() const;

 protected:
  // CTX_CHECKs that the name is new and a word ([A-Za-z0-9_-]+), and that the schema is sound:
  // distinct word names, defaults of the declared type that parse back from their canonical text.
  void add_info(PluginInfo info);

 private:
  std::string kind_;
  std::vector<PluginInfo> infos_;
};

template <class Interface>
class Registry : public RegistryBase {
 public:
  using Factory = std::function<std::unique_ptr<Interface>(const Params&)>;

  using RegistryBase::RegistryBase;

  void add(PluginInfo info, Factory factory) {
    add_info(std::move(info));
    factories_.push_back(std::move(factory));
  }

  std::unique_ptr<Interface> create(const PluginSpec& spec) const {
    const auto all = names();
    for (size_t i = 0; i < all.size(); ++i)
      if (all[i] == spec.name) return factories_[i](spec.params);
    get(spec.name);  // throws the "unknown plugin" error
    return nullptr;
  }
  std::unique_ptr<Interface> create(std::string_view text) const { return create(resolve(text)); }

 private:
  std::vector<Factory> factories_;
};

}  // namespace ctx
