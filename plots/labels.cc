#include "plots/labels.h"

#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "core/base/error.h"
#include "core/plugin/plugin_spec.h"
#include "plots/plot.h"

namespace ctx::plots {
namespace {

// A param value as plugin name and arguments. The store records canonical specs
// ("l2norm@1{keep_ratio=0.25}"), older or hand-made runs may hold plain names; text that does not
// parse as a spec is kept whole as the name.
struct Part {
  std::string name;
  std::vector<std::pair<std::string, std::string>> args;
};

Part parse_part(const std::string& value) {
  try {
    PluginSpecText spec = parse_plugin_spec_text(value, "run param");
    return {spec.name, std::move(spec.args)};
  } catch (const Error&) {
    return {value, {}};
  }
}

// The parts of a run's combination in kCombinationKeys order, with the slot's key; "none" and
// absent slots are left out. The runner records the plugin name as KEY and the canonical spec as
// KEY_spec; the spec is preferred, so that runs differing only in parameters get distinct labels.
std::vector<std::pair<std::string, Part>> combination_parts(const store::RunSummary& run) {
  std::vector<std::pair<std::string, Part>> parts;
  for (const char* key : kCombinationKeys) {
    auto it = run.run.params.find(std::string(key) + "_spec");
    if (it == run.run.params.end()) it = run.run.params.find(key);
    if (it == run.run.params.end() || it->second.empty()) continue;
    Part part = parse_part(it->second);
    if (part.name != "none") parts.emplace_back(key, std::move(part));
  }
  return parts;
}

// "name(k=v,...)" of the args that `keep` accepts; "name" if none.
template <class Keep>
std::string part_text(const Part& part, Keep keep) {
  std::string text = part.name;
  bool open = false;
  for (const auto& [k, v] : part.args) {
    if (!keep(k)) continue;
    text += open ? "," : "(";
    open = true;
    text += k + "=" + v;
  }
  return open ? text + ")" : text;
}

template <class PartText>
std::string join_label(const std::vector<std::pair<std::string, Part>>& parts, PartText part_text_of) {
  std::string label;
  for (const auto& [key, part] : parts) {
    if (!label.empty()) label += " + ";
    label += part_text_of(key, part);
  }
  return label.empty() ? "none" : label;
}

}  // namespace

std::string combination_label(const store::RunSummary& run) {
  return join_label(combination_parts(run), [](const std::string&, const Part& part) {
    return part_text(part, [](const std::string&) { return true; });
  });
}

std::vector<std::string> compact_combination_labels(const std::vector<const store::RunSummary*>& runs) {
  std::vector<std::vector<std::pair<std::string, Part>>> parts;
  for (const auto* run : runs) parts.push_back(combination_parts(*run));

  // (slot key, plugin name, arg) -> the distinct values it takes over the runs.
  using ArgKey = std::tuple<std::string, std::string, std::string>;
  std::map<ArgKey, std::set<std::string>> values;
  for (const auto& run_parts : parts)
    for (const auto& [key, part] : run_parts)
      for (const auto& [k, v] : part.args) values[{key, part.name, k}].insert(v);

  std::vector<std::string> labels;
  for (const auto& run_parts : parts) {
    labels.push_back(join_label(run_parts, [&](const std::string& key, const Part& part) {
      return part_text(part, [&](const std::string& k) { return values.at({key, part.name, k}).size() > 1; });
    }));
  }
  return labels;
}

}  // namespace ctx::plots
