// A plugin choice: kind, name, version and validated parameters. Its canonical text
// `name@version{k=v,...}` (every parameter, defaults included, sorted by name) is what the run store
// records; it parses back to an equal spec.
//
// Accepted spellings of a spec text:
//   flex                                   defaults
//   flex:mask=sliding_window,window=256    command line (`--set attention=flex:...`)
//   flex@1{mask=sliding_window,window=256} canonical
// List values are bracketed so their commas do not split parameters: skip_layers=[0,1].
//
// Grammar (whitespace around every token is ignored):
//   spec    := name [ '@' version ] [ ':' args | '{' [ args ] '}' ]
//   name    := [A-Za-z0-9_-]+          version := [0-9]+ (an int)
//   args    := arg { ',' arg }         arg     := key '=' value          key := [A-Za-z0-9_-]+
//   value   := text up to the next ',' outside [...] (or the closing '}'), possibly empty; its '['
//              and ']' balance and it holds no '{' or '}'. Its type is checked later against the
//              plugin's schema (params.h), so "flex:" and "flex{a=1}junk" are malformed here, while
//              "flex:window=abc" is a parameter error of the registry.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/plugin/params.h"

namespace ctx {

struct PluginSpec {
  std::string kind;  // attention | kv | kv_quant | quant | dataset | metric
  std::string name;
  int version = 1;
  Params params;

  std::string canonical() const;
  bool operator==(const PluginSpec& o) const {
    return kind == o.kind && name == o.name && version == o.version && params == o.params;
  }
};

// The unvalidated pieces of a spec text. Throws ctx::Error (naming `where`) on malformed text:
// empty name, missing '=', unbalanced brackets/braces, trailing characters.
struct PluginSpecText {
  std::string name;
  std::optional<int> version;
  std::vector<std::pair<std::string, std::string>> args;
};
PluginSpecText parse_plugin_spec_text(std::string_view text, std::string_view where);

}  // namespace ctx
