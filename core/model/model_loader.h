// Loads a model from a spec string:
//   DIR                        HF checkpoint folder: config.json + model.safetensors, or sharded
//                              with model.safetensors.index.json (memory-mapped; f32/f16/bf16)
//   FILE.bin                   llama2.c checkpoint (legacy 7-int header)
//   random:CONFIG.json[:SEED]  a model of that HF config's shape with deterministic random weights
//                              (seed 0 by default), for benchmarks at real sizes without a checkpoint
// Throws ctx::Error with one line naming the file/tensor/key on any problem.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/model/model_config.h"
#include "core/model/weights.h"
#include "core/tokenizer/tokenizer.h"

namespace ctx {

struct Model {
  ModelConfig config;
  ModelWeights weights;
  std::string spec;            // as given to load_model
  std::string format;          // "hf" | "llama2c" | "random"
  std::string tokenizer_path;  // found beside the checkpoint, or empty
  std::vector<int32_t> stop_ids;  // generation stops on these (EOS ids; BOS for llama2.c as run.c does)
};

std::unique_ptr<Model> load_model(const std::string& spec);

// The tokenizer for `model`: `explicit_path` if given, else the one found beside the checkpoint.
// Throws ctx::Error explaining how to pass one when there is none, or when its vocabulary size
// differs from the model's.
std::unique_ptr<Tokenizer> load_model_tokenizer(const Model& model, const std::string& explicit_path);

// Parts of load_model, exposed for tests and tools.
std::unique_ptr<Model> load_hf_checkpoint(const std::string& dir);
std::unique_ptr<Model> load_llama2c_checkpoint(const std::string& path);
std::unique_ptr<Model> make_random_model(const std::string& config_path, uint64_t seed);

}  // namespace ctx
