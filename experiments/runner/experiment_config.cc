#include "experiments/runner/experiment_config.h"

#include <algorithm>
#include <boost/property_tree/exceptions.hpp>
#include <boost/property_tree/ini_parser.hpp>
#include <boost/property_tree/json_parser.hpp>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/base/error.h"
#include "core/plugin/plugin_spec.h"
#include "datasets/dataset.h"

namespace ctx::runner {

namespace {

using boost::property_tree::ptree;

const char* const kExperimentKeys[] = {"name",           "model",           "tokenizer",   "device",
                                       "dtype",          "threads",         "seed",        "repetitions",
                                       "max_new_tokens", "context_lengths", "batch_sizes", "memory_limit_mb",
                                       "max_batches",    "stop_at_oom",     "prefill_chunk"};
const char* const kGridKinds[] = {"attention", "kv", "kv_quant", "quant"};

// A path whose separator never occurs in keys, so "kv.l2norm" is one key (as boost's INI parser makes it).
ptree::path_type literal(const std::string& key) { return ptree::path_type(key, '\x1f'); }

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The items of a list value: a JSON array's elements, or the text split at `sep` (empty items
// dropped). `where` names the key for errors.
std::vector<const ptree*> list_nodes(const ptree& node, const std::string& where) {
  std::vector<const ptree*> out;
  for (const auto& [k, v] : node) {
    if (!k.empty()) fail(where, ": expected a list, got an object (key '", k, "')");
    out.push_back(&v);
  }
  return out;
}

std::vector<std::string> split_list(const ptree& node, char sep, const std::string& where) {
  std::vector<std::string> out;
  if (!node.empty()) {
    for (const ptree* v : list_nodes(node, where)) {
      if (!v->empty()) fail(where, ": list elements must be values");
      out.push_back(trim(v->data()));
    }
    return out;
  }
  std::string text = node.data();
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string::npos) end = text.size();
    const std::string item = trim(text.substr(start, end - start));
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

int64_t parse_int(const std::string& text, int64_t min, const std::string& where) {
  int64_t v = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (text.empty() || ec != std::errc() || p != e) fail(where, ": expected an integer, got ", quote_param_text(text));
  if (v < min) fail(where, ": must be >= ", min, ", got ", v);
  return v;
}

std::vector<int64_t> parse_int_list(const ptree& node, int64_t min, const std::string& where) {
  std::vector<int64_t> out;
  for (const auto& item : split_list(node, ',', where)) out.push_back(parse_int(item, min, where));
  if (out.empty()) fail(where, ": the list is empty (give at least one value)");
  return out;
}

std::string leaf_text(const ptree& node, const std::string& where) {
  if (!node.empty()) fail(where, ": expected a single value, got a list or object");
  return trim(node.data());
}

bool is_word(const std::string& s, const char* extra = "_-") {
  return !s.empty() && std::all_of(s.begin(), s.end(), [&](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || std::strchr(extra, c);
         });
}

// The canonical spec of `canonical` with `key` set to `value` (context-length control).
std::string with_param(const RegistryBase& registry, const std::string& canonical, const std::string& key,
                       const std::string& value) {
  PluginSpecText t = parse_plugin_spec_text(canonical, registry.kind() + " plugin");
  bool replaced = false;
  for (auto& [k, v] : t.args)
    if (k == key) v = value, replaced = true;
  if (!replaced) t.args.emplace_back(key, value);
  std::string text = t.name + "{";
  for (size_t i = 0; i < t.args.size(); ++i) text += (i ? "," : "") + t.args[i].first + "=" + t.args[i].second;
  return registry.resolve(text + "}").canonical();
}

// The dataset spec a context length L gives (see the header).
std::string dataset_at_context(const Catalog& catalog, const std::string& canonical, int64_t length) {
  if (length == 0) return canonical;
  const PluginInfo& info = catalog.dataset.get(parse_plugin_spec_text(canonical, "dataset plugin").name);
  const bool haystack = std::any_of(info.schema.begin(), info.schema.end(),
                                    [](const ParamSpec& p) { return p.name == "context_tokens"; });
  return haystack ? with_param(catalog.dataset, canonical, "context_tokens", "[" + std::to_string(length) + "]")
                  : with_param(catalog.dataset, canonical, "max_tokens", std::to_string(length));
}

void check_known_keys(const ptree& section, const std::string& name, const std::vector<std::string>& known,
                      const std::string& source) {
  for (const auto& [k, v] : section)
    if (std::find(known.begin(), known.end(), k) == known.end())
      fail(source, ": [", name, "] unknown key '", k, "' (known: ", join(known), ")");
}

}  // namespace

void apply_override(ptree& tree, const std::string& assignment, const std::string& source) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    fail(source, ": --set ", quote_param_text(assignment), ": expected KEY=VALUE");
  const std::string key = trim(assignment.substr(0, eq));
  const std::string value = trim(assignment.substr(eq + 1));
  std::string section, name;
  const size_t dot = key.find('.');
  if (dot == std::string::npos) {
    const bool grid = std::find(std::begin(kGridKinds), std::end(kGridKinds), key) != std::end(kGridKinds);
    const bool exp = std::find(std::begin(kExperimentKeys), std::end(kExperimentKeys), key) != std::end(kExperimentKeys);
    if (!grid && !exp)
      fail(source, ": --set ", key, ": unknown key (an [experiment] or [grid] key, SECTION.KEY, or KIND.NAME.PARAM)");
    section = grid ? "grid" : "experiment";
    name = key;
  } else {
    const std::string head = key.substr(0, dot);
    if (head == "experiment" || head == "grid" || head == "datasets") {
      section = head;
      name = key.substr(dot + 1);
    } else {  // KIND.NAME.PARAM: the plugin section KIND.NAME
      const size_t last = key.rfind('.');
      if (last == dot) fail(source, ": --set ", key, ": expected KIND.NAME.PARAM for a plugin parameter");
      section = key.substr(0, last);
      name = key.substr(last + 1);
    }
  }
  if (name.empty()) fail(source, ": --set ", key, ": empty key");
  auto child = tree.get_child_optional(literal(section));
  if (!child) child = tree.add_child(literal(section), ptree());
  child->erase(name);
  child->add_child(literal(name), ptree(value));
}

ExperimentConfig parse_experiment_config(const ptree& tree, const std::string& source, const Catalog& catalog) {
  ExperimentConfig c;
  c.source = source;
  std::set<std::string> plugin_sections;
  std::vector<std::pair<std::string, const ptree*>> setting_sections;  // [setting.NAME], in file order
  for (const auto& [k, v] : tree) {
    if (k == "experiment" || k == "datasets" || k == "grid") continue;
    const size_t dot = k.find('.');
    const std::string kind = dot == std::string::npos ? k : k.substr(0, dot);
    if (kind == "setting" && dot != std::string::npos) {
      const std::string name = k.substr(dot + 1);
      if (!is_word(name, "_-.")) fail(source, ": [", k, "]: a setting name uses letters, digits, '_', '-' and '.'");
      setting_sections.emplace_back(name, &v);
      continue;
    }
    if (dot == std::string::npos || std::find(std::begin(kGridKinds), std::end(kGridKinds), kind) == std::end(kGridKinds))
      fail(source, ": unknown section [", k, "] (known: experiment, datasets, grid, setting.NAME, and KIND.NAME for ",
           "KIND in attention, kv, kv_quant, quant)");
    plugin_sections.insert(k);
  }

  // [experiment]
  const auto exp = tree.get_child_optional("experiment");
  if (!exp) fail(source, ": missing section [experiment] (with at least name and model)");
  check_known_keys(*exp, "experiment", {std::begin(kExperimentKeys), std::end(kExperimentKeys)}, source);
  auto text = [&](const char* key, const std::string& dflt, bool required) {
    const auto node = exp->get_child_optional(literal(key));
    if (!node) {
      if (required) fail(source, ": [experiment] missing key '", key, "'");
      return dflt;
    }
    return leaf_text(*node, str_cat(source, ": [experiment] ", key));
  };
  auto integer = [&](const char* key, int64_t dflt, int64_t min) {
    const auto node = exp->get_child_optional(literal(key));
    const std::string where = str_cat(source, ": [experiment] ", key);
    return node ? parse_int(leaf_text(*node, where), min, where) : dflt;
  };
  auto int_list = [&](const char* key, std::vector<int64_t> dflt, int64_t min) {
    const auto node = exp->get_child_optional(literal(key));
    return node ? parse_int_list(*node, min, str_cat(source, ": [experiment] ", key)) : dflt;
  };
  c.name = text("name", "", true);
  if (!is_word(c.name, "_-."))
    fail(source, ": [experiment] name ", quote_param_text(c.name), ": use letters, digits, '_', '-' and '.'");
  c.model = text("model", "", true);
  if (c.model.empty()) fail(source, ": [experiment] model is empty");
  if (c.model.rfind("random:", 0) != 0 && !std::filesystem::exists(c.model))
    fail(source, ": [experiment] model ", quote_param_text(c.model), ": no such file or folder");
  c.tokenizer = text("tokenizer", "", false);
  if (!c.tokenizer.empty() && !std::filesystem::exists(c.tokenizer))
    fail(source, ": [experiment] tokenizer ", quote_param_text(c.tokenizer), ": no such file");
  c.device = text("device", "cpu", false);
  if (c.device != "cpu" && c.device != "cuda")
    fail(source, ": [experiment] device ", quote_param_text(c.device), ": expected cpu or cuda");
  c.dtype = text("dtype", "float32", false);
  if (c.dtype != "float32" && c.dtype != "float16" && c.dtype != "bfloat16")
    fail(source, ": [experiment] dtype ", quote_param_text(c.dtype), ": expected float32, float16 or bfloat16");
  c.threads = integer("threads", 0, 0);
  c.seed = integer("seed", 0, 0);
  c.repetitions = integer("repetitions", 1, 1);
  c.max_new_tokens = integer("max_new_tokens", 32, 1);
  c.memory_limit_mb = integer("memory_limit_mb", 0, 0);
  c.max_batches = integer("max_batches", 0, 0);
  c.prefill_chunk = integer("prefill_chunk", 0, 0);
  if (const std::string stop = text("stop_at_oom", "false", false); stop == "true" || stop == "false")
    c.stop_at_oom = stop == "true";
  else
    fail(source, ": [experiment] stop_at_oom ", quote_param_text(stop), ": expected true or false");
  c.context_lengths = int_list("context_lengths", {0}, 0);
  c.batch_sizes = int_list("batch_sizes", {1}, 1);

  // [datasets]
  const auto ds = tree.get_child_optional("datasets");
  if (!ds || ds->empty()) fail(source, ": missing section [datasets] (LABEL = dataset spec, at least one)");
  std::set<std::string> labels;
  for (const auto& [label, node] : *ds) {
    const std::string where = str_cat(source, ": [datasets] ", label);
    if (!is_word(label)) fail(where, ": a label must be a word ([A-Za-z0-9_-]+)");
    if (!labels.insert(label).second) fail(where, ": label given twice");
    ptree one;
    one.add_child(literal(label), node);
    try {
      c.datasets.emplace_back(label, catalog.dataset.resolve(one, label, where, &tree).canonical());
    } catch (const Error& e) {
      throw Error(e.what());
    }
  }

  // [grid], or [setting.NAME] sections
  const auto grid = tree.get_child_optional("grid");
  if (grid) check_known_keys(*grid, "grid", {std::begin(kGridKinds), std::end(kGridKinds)}, source);
  if (grid && !grid->empty() && !setting_sections.empty())
    fail(source, ": [grid] and [setting.", setting_sections.front().first,
         "] exclude each other (a product of plugin lists, or named combinations)");
  auto specs_of = [&](const char* kind) -> std::vector<std::string>& {
    return kind == std::string("attention") ? c.attention
           : kind == std::string("kv")      ? c.kv
           : kind == std::string("kv_quant") ? c.kv_quant
                                             : c.quant;
  };
  for (const auto& [name, section] : setting_sections) {
    const std::string where = str_cat(source, ": [setting.", name, "]");
    check_known_keys(*section, "setting." + name, {std::begin(kGridKinds), std::end(kGridKinds)}, source);
    ExperimentConfig::Setting setting;
    setting.name = name;
    for (const char* kind : kGridKinds) {
      const auto node = section->get_child_optional(literal(kind));
      ptree one;
      one.add_child(literal(kind), node ? *node : ptree(kind == std::string("attention") ? "sdpa" : "none"));
      if (node && !node->empty()) fail(where, " ", kind, ": expected one plugin spec");
      const std::string spec = catalog.find_kind(kind)->resolve(one, kind, str_cat(where, " ", kind), &tree).canonical();
      auto& out = specs_of(kind);
      if (std::find(out.begin(), out.end(), spec) == out.end()) out.push_back(spec);
      (kind == std::string("attention") ? setting.attention
       : kind == std::string("kv")      ? setting.kv
       : kind == std::string("kv_quant") ? setting.kv_quant
                                         : setting.quant) = spec;
    }
    for (const auto& other : c.settings)
      if (other.attention == setting.attention && other.kv == setting.kv && other.kv_quant == setting.kv_quant &&
          other.quant == setting.quant)
        fail(where, ": the same plugins as [setting.", other.name, "]");
    c.settings.push_back(std::move(setting));
  }
  for (const char* kind : kGridKinds) {
    if (!c.settings.empty()) break;
    const RegistryBase& registry = *catalog.find_kind(kind);
    auto& out = specs_of(kind);
    const std::string where = str_cat(source, ": [grid] ", kind);
    const auto node = grid ? grid->get_child_optional(literal(kind)) : boost::none;
    std::vector<ptree> items;
    if (!node) {
      items.emplace_back(kind == std::string("attention") ? "sdpa" : "none");
    } else if (!node->empty()) {
      for (const ptree* v : list_nodes(*node, where)) items.push_back(*v);
    } else {
      for (const auto& s : split_list(*node, ';', where)) items.emplace_back(s);
    }
    if (items.empty()) fail(where, ": empty grid list (give at least one plugin spec)");
    for (size_t i = 0; i < items.size(); ++i) {
      ptree one;
      one.add_child(literal(kind), items[i]);
      const std::string spec = registry.resolve(one, kind, str_cat(where, " #", i + 1), &tree).canonical();
      if (std::find(out.begin(), out.end(), spec) != out.end()) fail(where, ": ", spec, " is listed twice");
      out.push_back(spec);
    }
  }
  for (const auto& s : plugin_sections) {  // a parameter section nobody uses is a typo
    const std::string kind = s.substr(0, s.find('.'));
    const std::string name = s.substr(s.find('.') + 1);
    const auto& specs = kind == "attention" ? c.attention : kind == "kv" ? c.kv : kind == "kv_quant" ? c.kv_quant : c.quant;
    const bool used = std::any_of(specs.begin(), specs.end(), [&](const std::string& spec) {
      return parse_plugin_spec_text(spec, kind).name == name;
    });
    if (!used)
      fail(source, ": section [", s, "] configures ", kind, " plugin '", name, "', which ",
           c.settings.empty() ? "[grid] " + kind + " does not list" : "no [setting.*] uses");
  }

  // The grid, quant outermost; or the settings in file order.
  std::vector<ExperimentConfig::Setting> combos = c.settings;
  if (combos.empty())
    for (const auto& q : c.quant)
      for (const auto& a : c.attention)
        for (const auto& k : c.kv)
          for (const auto& kq : c.kv_quant) combos.push_back({"", a, k, kq, q});
  for (const auto& combo : combos)
    for (int64_t len : c.context_lengths)
      for (int64_t batch : c.batch_sizes) {
        TrialConfig t;
        t.experiment = c.name;
        t.index = int64_t(c.trials.size());
        t.model = c.model, t.tokenizer = c.tokenizer, t.device = c.device, t.dtype = c.dtype;
        t.threads = c.threads, t.seed = c.seed, t.repetitions = c.repetitions;
        t.max_new_tokens = c.max_new_tokens, t.memory_limit_mb = c.memory_limit_mb, t.max_batches = c.max_batches;
        t.prefill_chunk = c.prefill_chunk;
        for (const auto& [label, spec] : c.datasets) {
          try {
            t.datasets.emplace_back(label, dataset_at_context(catalog, spec, len));
          } catch (const Error& e) {
            fail(source, ": [datasets] ", label, " at context length ", len, ": ", e.what());
          }
        }
        t.attention = combo.attention, t.kv = combo.kv, t.kv_quant = combo.kv_quant, t.quant = combo.quant;
        t.context_length = len, t.batch_size = batch;
        c.trials.push_back(std::move(t));
      }
  return c;
}

ExperimentConfig load_experiment_config(const std::string& path, const std::vector<std::string>& overrides,
                                        const Catalog& catalog) {
  if (!std::filesystem::is_regular_file(path)) fail(path, ": no such config file");
  ptree tree;
  const std::string ext = std::filesystem::path(path).extension().string();
  try {
    if (ext == ".json") {
      boost::property_tree::read_json(path, tree);
    } else if (ext == ".ini") {
      boost::property_tree::read_ini(path, tree);
    } else {
      fail(path, ": unknown config format '", ext, "' (expected .ini or .json)");
    }
  } catch (const boost::property_tree::file_parser_error& e) {
    fail(path, ":", e.line(), ": ", e.message());
  }
  for (const auto& o : overrides) apply_override(tree, o, path);
  return parse_experiment_config(tree, path, catalog);
}

nlohmann::json TrialConfig::to_json() const {
  nlohmann::json ds = nlohmann::json::object();
  for (const auto& [label, spec] : datasets) ds[label] = spec;
  nlohmann::json j = {{"experiment", experiment},   {"model", model},
          {"tokenizer", tokenizer},     {"device", device},
          {"dtype", dtype},             {"threads", threads},
          {"seed", seed},               {"repetitions", repetitions},
          {"max_new_tokens", max_new_tokens}, {"memory_limit_mb", memory_limit_mb},
          {"datasets", ds},             {"attention", attention},
          {"kv", kv},                   {"kv_quant", kv_quant},
          {"quant", quant},             {"context_length", context_length},
          {"batch_size", batch_size}};
  if (max_batches > 0) j["max_batches"] = max_batches;
  if (prefill_chunk > 0) j["prefill_chunk"] = prefill_chunk;
  return j;
}

std::string TrialConfig::canonical() const { return to_json().dump(); }

TrialConfig TrialConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": a trial config must be a JSON object");
  auto get = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) fail(where, ": trial config lacks '", key, "'");
    return j.at(key);
  };
  auto str = [&](const char* key) {
    const auto& v = get(key);
    if (!v.is_string()) fail(where, ": trial config '", key, "' must be a string");
    return v.get<std::string>();
  };
  auto num = [&](const char* key) {
    const auto& v = get(key);
    if (!v.is_number_integer()) fail(where, ": trial config '", key, "' must be an integer");
    return v.get<int64_t>();
  };
  TrialConfig t;
  t.experiment = str("experiment");
  t.model = str("model"), t.tokenizer = str("tokenizer"), t.device = str("device"), t.dtype = str("dtype");
  t.threads = num("threads"), t.seed = num("seed"), t.repetitions = num("repetitions");
  t.max_new_tokens = num("max_new_tokens"), t.memory_limit_mb = num("memory_limit_mb");
  const auto& ds = get("datasets");
  if (!ds.is_object()) fail(where, ": trial config 'datasets' must be an object");
  for (const auto& [label, spec] : ds.items()) {
    if (!spec.is_string()) fail(where, ": trial config datasets.", label, " must be a string");
    t.datasets.emplace_back(label, spec.get<std::string>());
  }
  t.attention = str("attention"), t.kv = str("kv"), t.kv_quant = str("kv_quant"), t.quant = str("quant");
  t.context_length = num("context_length"), t.batch_size = num("batch_size");
  if (j.contains("max_batches")) t.max_batches = num("max_batches");
  if (j.contains("prefill_chunk")) {
    t.prefill_chunk = num("prefill_chunk");
    if (t.prefill_chunk < 0) fail(where, ": trial config 'prefill_chunk' must be >= 0, not ", t.prefill_chunk);
  }
  return t;
}

std::map<std::string, std::string> TrialConfig::params() const {
  auto name_of = [](const std::string& spec) { return spec.substr(0, spec.find('@')); };
  return {{"model", model},
          {"device", device},
          {"dtype", dtype},
          {"threads", std::to_string(threads)},
          {"attention", name_of(attention)},
          {"attention_spec", attention},
          {"kv", name_of(kv)},
          {"kv_spec", kv},
          {"kv_quant", name_of(kv_quant)},
          {"kv_quant_spec", kv_quant},
          {"quant", name_of(quant)},
          {"quant_spec", quant},
          {"context_length", std::to_string(context_length)},
          {"batch_size", std::to_string(batch_size)},
          {"max_new_tokens", std::to_string(max_new_tokens)}};
}

nlohmann::json ExperimentConfig::to_json() const {
  nlohmann::json ds = nlohmann::json::object();
  for (const auto& [label, spec] : datasets) ds[label] = spec;
  nlohmann::json j = {{"name", name},
          {"source", source},
          {"model", model},
          {"tokenizer", tokenizer},
          {"device", device},
          {"dtype", dtype},
          {"threads", threads},
          {"seed", seed},
          {"repetitions", repetitions},
          {"max_new_tokens", max_new_tokens},
          {"memory_limit_mb", memory_limit_mb},
          {"context_lengths", context_lengths},
          {"batch_sizes", batch_sizes},
          {"datasets", ds},
          {"grid", {{"attention", attention}, {"kv", kv}, {"kv_quant", kv_quant}, {"quant", quant}}}};
  // Only when used, so that the stored JSON of configs without them is unchanged.
  if (max_batches > 0) j["max_batches"] = max_batches;
  if (prefill_chunk > 0) j["prefill_chunk"] = prefill_chunk;
  if (stop_at_oom) j["stop_at_oom"] = true;
  for (const auto& s : settings)
    j["settings"][s.name] = {{"attention", s.attention}, {"kv", s.kv}, {"kv_quant", s.kv_quant}, {"quant", s.quant}};
  return j;
}

}  // namespace ctx::runner
