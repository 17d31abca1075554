// libFuzzer target for plugin spec texts and config resolution (core/plugin). The input is used
// three ways: as a spec text (parse_plugin_spec_text, RegistryBase::resolve), and, when it parses
// as JSON or INI, as a config tree resolved under the keys "attention" and "kv". Beyond "no crash,
// no sanitizer report" it checks the contract of an accepted spec: every schema parameter has a
// value of its type that validates again, and the canonical text parses back to an equal spec with
// the same canonical text. A rejected input must throw ctx::Error (or, for the config trees, a
// Boost.PropertyTree parser error before our code runs); any other exception escapes and crashes.
// Boost.PropertyTree's JSON reader includes the deprecated global bind placeholders.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "core/base/error.h"
#include "core/plugin/registry.h"

namespace {

struct Fake {};

struct Registries {
  ctx::Registry<Fake> attention{"attention"};
  ctx::Registry<Fake> kv{"kv"};
  Registries() {
    using ctx::ParamSpec;
    auto make = [](const ctx::Params&) { return std::make_unique<Fake>(); };
    attention.add({"eager", 1, "reference", {}}, make);
    attention.add({"flex", 1, "masks",
                   {ParamSpec::Choice("mask", "causal", {"causal", "sliding_window", "prefix_lm"}, ""),
                    ParamSpec::Int("window", 0, 0, 1 << 20, ""), ParamSpec::Int("block", 64, 16, 1024, "")}},
                  make);
    attention.add({"paged", 3, "blocks",
                   {ParamSpec::Int("block_size", 16, 1, 4096, ""), ParamSpec::Int("offset", -3, -100, 100, ""),
                    ParamSpec::Float("scale", 1.0, std::nullopt, std::nullopt, "")}},
                  make);
    kv.add({"l2norm", 2, "norms",
            {ParamSpec::Float("keep_ratio", 0.7, 0.0, 1.0, ""), ParamSpec::Int("prune_after", 512, 0, std::nullopt, ""),
             ParamSpec::IntList("skip_layers", {0, 1}, 0, 255, ""), ParamSpec::Bool("per_head", true, ""),
             ParamSpec::StringList("names", {"a", "b"}, ""),
             ParamSpec::String("tag", "base", ""), ParamSpec::Choice("order", "lowest", {"lowest", "highest"}, "")}},
           make);
  }
};

[[noreturn]] void violated(const char* what, const std::string& detail) {
  std::fprintf(stderr, "plugin_spec_fuzz: contract violated: %s (%s)\n", what, detail.c_str());
  std::abort();
}

void check_spec(const ctx::RegistryBase& reg, const ctx::PluginSpec& spec) {
  const ctx::PluginInfo* info = reg.find(spec.name);
  if (!info || spec.kind != reg.kind() || spec.version != info->version) violated("identity", spec.name);
  if (spec.params.values().size() != info->schema.size()) violated("not every parameter has a value", spec.canonical());
  for (const auto& p : info->schema) {
    auto it = spec.params.values().find(p.name);
    if (it == spec.params.values().end()) violated("missing parameter", p.name);
    // Re-validating the canonical text of the value must give the same value (type, range, choices).
    try {
      if (ctx::parse_param_value(p, ctx::format_param_value(it->second), "check") != it->second)
        violated("value does not round-trip", p.name);
    } catch (const ctx::Error& e) {
      violated("accepted value does not validate", e.what());
    }
  }
  const std::string canon = spec.canonical();
  ctx::PluginSpec back;
  try {
    back = reg.resolve(canon);
  } catch (const ctx::Error& e) {
    violated("canonical text rejected", e.what());
  }
  if (!(back == spec)) violated("canonical text parses to another spec", canon);
  if (back.canonical() != canon) violated("canonical text not stable", canon);
}

void resolve_tree(const Registries& r, const boost::property_tree::ptree& tree) {
  for (const ctx::RegistryBase* reg : {static_cast<const ctx::RegistryBase*>(&r.attention), static_cast<const ctx::RegistryBase*>(&r.kv)}) {
    try {
      check_spec(*reg, reg->resolve(tree, reg->kind(), "fuzz"));
    } catch (const ctx::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Registries r;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    ctx::parse_plugin_spec_text(text, "fuzz");
  } catch (const ctx::Error&) {
  }
  for (const ctx::RegistryBase* reg : {static_cast<const ctx::RegistryBase*>(&r.attention), static_cast<const ctx::RegistryBase*>(&r.kv)}) {
    try {
      check_spec(*reg, reg->resolve(text));
    } catch (const ctx::Error&) {
      // A clear rejection is the expected outcome for most inputs.
    }
  }
  boost::property_tree::ptree tree;
  try {
    std::istringstream in(text);
    boost::property_tree::read_json(in, tree);
    resolve_tree(r, tree);
  } catch (const boost::property_tree::json_parser_error&) {
  }
  try {
    std::istringstream in(text);
    boost::property_tree::read_ini(in, tree);
    resolve_tree(r, tree);
  } catch (const boost::property_tree::ini_parser_error&) {
  }
  return 0;
}
