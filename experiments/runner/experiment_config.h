// Experiment configs (DESIGN.md "Runs"): an INI or JSON file (Boost.PropertyTree) naming a model,
// datasets and the grid of plugin choices to sweep, expanded into trials.
//
// INI layout (JSON: the same sections as objects, lists as arrays):
//   [experiment]  name (required, [A-Za-z0-9_.-]+), model (required: checkpoint folder, llama2.c .bin
//                 or random:CONFIG.json[:SEED]), tokenizer (default: found beside the model),
//                 device cpu|cuda, dtype float32|float16|bfloat16, threads (0 = all cores), seed,
//                 repetitions (timed runs per example; answers come from the first), max_new_tokens
//                 (cap on every sample's own limit), context_lengths (prompt token budgets; 0 = prompts
//                 as the dataset builds them), batch_sizes, memory_limit_mb (0 = none; a trial whose
//                 peak host memory exceeds it ends with status oom; device cuda: the GPU engine's
//                 allocator may hold no more, as on a card that small), max_batches (0 = all; N: each
//                 trial runs only the first N batches of batch_size samples of each dataset, so that
//                 a batch sweep and batch 1 run one batch each), stop_at_oom (false; true: `ctxlab run`
//                 skips a trial, running and storing nothing, when a trial of the same setting with a
//                 context length and a batch size no larger ended oom: memory only grows with both),
//                 prefill_chunk (0: each engine's own: the CPU one forward per prompt, the GPU 2048
//                 tokens; N: both engines prefill in forwards of at most N tokens, so that KV
//                 compression and KIVI quantization, which act after each forward, see the same
//                 chunks on either device)
//   [datasets]    LABEL = dataset spec, e.g. `mmlu = mmlu:subjects=[anatomy],limit=8` (at least one)
//   [grid]        attention, kv, kv_quant, quant: plugin specs separated by ';' (JSON: arrays);
//                 defaults sdpa, none, none, none
//   [setting.NAME] instead of a [grid] product, named combinations: attention, kv, kv_quant, quant
//                 (one spec each, defaults as [grid]); trials are then the settings in file order x
//                 context_length x batch_size. [grid] and [setting.*] sections exclude each other.
//                 (INI drops empty sections: give each setting at least one key.)
//   [KIND.NAME]   parameters for every grid entry of that plugin (DESIGN.md: `[kv.l2norm] keep_ratio = 0.7`)
// Lists of numbers are separated by ',' (or are JSON arrays).
// A context length L > 0 becomes each dataset's `max_tokens=L` (LongBench middle truncation), or
// `context_tokens=[L]` for a dataset with that parameter (the synthetic needle haystack).
//
// Trials: the product quant x attention x kv x kv_quant x context_length x batch_size, in that
// nesting order (quant outermost, so each quantized model is built once); with [setting.*]
// sections, setting x context_length x batch_size.
// Every user error (unreadable file, syntax, unknown section or key, wrong type, bad plugin spec,
// empty grid list, missing dataset file) throws one ctx::Error naming the file, the key and the value.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/plugin/catalog.h"

namespace ctx::runner {

// One point of the sweep: everything needed to run it again, nothing else. Its canonical JSON (keys
// sorted, plugin specs canonical) is what the run store records and hashes.
struct TrialConfig {
  std::string experiment;
  int64_t index = 0;  // position in the expanded grid (not part of the canonical config)
  std::string model, tokenizer, device, dtype;
  int64_t threads = 0, seed = 0, repetitions = 1, max_new_tokens = 32, memory_limit_mb = 0;
  int64_t max_batches = 0;  // 0 = all (in the canonical config only when set, so older hashes stay)
  int64_t prefill_chunk = 0;  // 0 = the engine's own (in the canonical config only when set)
  std::vector<std::pair<std::string, std::string>> datasets;  // label -> canonical dataset spec
  std::string attention, kv, kv_quant, quant;                // canonical plugin specs
  int64_t context_length = 0, batch_size = 1;

  // Whether `other` has the same plugins (attention, kv, kv_quant, quant): one setting of the sweep.
  bool same_setting(const TrialConfig& other) const {
    return attention == other.attention && kv == other.kv && kv_quant == other.kv_quant && quant == other.quant;
  }

  nlohmann::json to_json() const;
  std::string canonical() const;  // to_json().dump()
  // Parses a stored canonical config; throws ctx::Error naming `where` and the key on anything else.
  static TrialConfig from_json(const nlohmann::json& j, const std::string& where);
  // The run store's params: model, device, dtype, threads, attention, kv, kv_quant, quant (names and
  // canonical specs), context_length, batch_size, max_new_tokens.
  std::map<std::string, std::string> params() const;
};

struct ExperimentConfig {
  std::string source;  // file path, for messages
  std::string name, model, tokenizer, device = "cpu", dtype = "float32";
  int64_t threads = 0, seed = 0, repetitions = 1, max_new_tokens = 32, memory_limit_mb = 0, max_batches = 0;
  int64_t prefill_chunk = 0;
  bool stop_at_oom = false;
  std::vector<int64_t> context_lengths{0}, batch_sizes{1};
  std::vector<std::pair<std::string, std::string>> datasets;  // label -> canonical spec (no context applied)
  std::vector<std::string> attention, kv, kv_quant, quant;    // canonical specs (every one a setting uses)
  struct Setting {
    std::string name, attention, kv, kv_quant, quant;  // canonical specs
  };
  std::vector<Setting> settings;  // [setting.NAME] sections in file order (empty: the [grid] product)
  std::vector<TrialConfig> trials;                           // the expanded grid

  nlohmann::json to_json() const;  // the whole experiment as loaded (overrides applied)
};

// Reads `path` (.ini or .json by extension), applies `overrides` ("key=value", see apply_override)
// and validates everything against `catalog`.
ExperimentConfig load_experiment_config(const std::string& path, const std::vector<std::string>& overrides,
                                        const Catalog& catalog);

// `--set` keys: SECTION.KEY (experiment.threads, grid.kv, datasets.mmlu), a bare key of [experiment]
// or [grid] (threads, kv), or a plugin section's parameter KIND.NAME.PARAM (kv.l2norm.keep_ratio).
void apply_override(boost::property_tree::ptree& tree, const std::string& assignment, const std::string& source);

// Validates an already-read tree (for tests and JSON from other tools).
ExperimentConfig parse_experiment_config(const boost::property_tree::ptree& tree, const std::string& source,
                                         const Catalog& catalog);

}  // namespace ctx::runner
