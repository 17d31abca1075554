// HF checkpoint folders: config.json (+ generation_config.json) and model.safetensors or a sharded
// set listed in model.safetensors.index.json. Shards are memory-mapped once each.
#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/model/model_loader.h"

namespace ctx {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json parse_json_file(const fs::path& path) {
  try {
    return json::parse(read_file(path.string()));
  } catch (const json::exception& e) {
    fail(path.string(), ": not valid JSON: ", e.what());
  }
}

// Adds eos ids from generation_config.json (they may differ from config.json's).
void add_generation_stop_ids(const fs::path& dir, std::vector<int32_t>& stop_ids) {
  const fs::path gen = dir / "generation_config.json";
  if (!fs::exists(gen)) return;
  json g = parse_json_file(gen);
  if (!g.is_object() || !g.contains("eos_token_id")) return;
  auto add = [&](const json& v) {
    if (!v.is_number_integer()) fail(gen.string(), ": eos_token_id must be an integer or a list of integers");
    int32_t id = v.get<int32_t>();
    if (std::find(stop_ids.begin(), stop_ids.end(), id) == stop_ids.end()) stop_ids.push_back(id);
  };
  const json& e = g["eos_token_id"];
  if (e.is_null()) return;
  if (e.is_array()) {
    for (const auto& v : e) add(v);
  } else {
    add(e);
  }
}

}  // namespace

std::unique_ptr<Model> load_hf_checkpoint(const std::string& dir_str) {
  const fs::path dir(dir_str);
  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) fail(dir_str, ": no config.json in this folder (not an HF checkpoint?)");
  auto model = std::make_unique<Model>();
  model->spec = dir_str;
  model->format = "hf";
  model->config = parse_hf_config(read_file(config_path.string()), config_path.string());
  model->stop_ids = model->config.eos_token_ids;
  add_generation_stop_ids(dir, model->stop_ids);
  if (fs::exists(dir / "tokenizer.model")) model->tokenizer_path = (dir / "tokenizer.model").string();

  // name -> shard; a single-file checkpoint is one shard.
  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
  std::map<std::string, std::string> weight_map;
  const fs::path index_path = dir / "model.safetensors.index.json";
  std::string source;
  if (fs::exists(index_path)) {
    source = index_path.string();
    json idx = parse_json_file(index_path);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail(source, ": missing object 'weight_map'");
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail(source, ": weight_map['", it.key(), "'] must be a file name");
      const std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == "..")
        fail(source, ": weight_map['", it.key(), "'] = '", file, "' must be a file in the checkpoint folder");
      weight_map[it.key()] = file;
      if (!shards.count(file)) {
        if (!fs::exists(dir / file)) fail(source, ": shard '", file, "' listed in weight_map does not exist");
        shards[file] = std::make_shared<SafetensorsFile>(SafetensorsFile::open((dir / file).string()));
      }
    }
  } else if (fs::exists(dir / "model.safetensors")) {
    source = (dir / "model.safetensors").string();
    shards["model.safetensors"] = std::make_shared<SafetensorsFile>(SafetensorsFile::open(source));
    for (const auto& t : shards["model.safetensors"]->index().tensors) weight_map[t.name] = "model.safetensors";
  } else {
    fail(dir_str, ": no model.safetensors or model.safetensors.index.json in this folder");
  }

  TensorLookup lookup = [&](const std::string& name, const std::vector<int64_t>&) -> std::optional<RawTensor> {
    auto it = weight_map.find(name);
    if (it == weight_map.end()) return std::nullopt;
    const auto& shard = shards.at(it->second);
    const TensorView* t = shard->index().find(name);
    if (!t) fail(shard->path(), ": tensor '", name, "' is listed in the index but not in this shard");
    return RawTensor{t->dtype, t->shape, t->data, shard};
  };
  model->weights = assemble_hf_weights(model->config, lookup, source);
  return model;
}

}  // namespace ctx
