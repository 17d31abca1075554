// ctxlab logits: teacher-forced logits of a token sequence, as float32 safetensors
// (tensors "input_ids" int64 [1, T] and "logits" float32 [1, T, vocab], the layout of the
// fixtures' reference.safetensors). --device cuda runs the GPU engine (bf16 weights) instead of the
// CPU engine, for comparisons against other implementations on the same card, with --attention
// as the runner maps it onto the GPU engine (runner::set_gpu_attention: eager, sdpa, flash, flex, paged).
#include <iostream>

#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "core/io/safetensors.h"
#include "core/model/transformer.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "experiments/runner/trial_engine.h"
#include "plugins/register_all.h"

namespace ctx::cli {

int cmd_logits(const Args& args) {
  po::options_description desc("logits options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("prompt-ids", po::value<std::string>()->required(), "token ids, e.g. 1,5,9")
      ("out", po::value<std::string>()->required(), "output .safetensors file")
      ("device", po::value<std::string>()->default_value("cpu"), "cpu (float32 engine) or cuda (bf16 GPU engine)");
  add_attention_option(desc);
  po::variables_map vm;
  if (!parse_options("logits", "--model SPEC --prompt-ids IDS --out FILE.safetensors", desc, args, vm)) return 0;
  const auto ids = parse_id_list(vm["prompt-ids"].as<std::string>(), "--prompt-ids");
  if (ids.empty()) fail("--prompt-ids is empty");
  const std::string device = vm["device"].as<std::string>();
  if (device != "cpu" && device != "cuda") fail("--device must be cpu or cuda, not '", device, "'");
  auto model = load_model(vm["model"].as<std::string>());
  std::vector<float> logits;
  if (device == "cuda") {
    cuda::GpuEngineOptions options;
    options.capacity = int64_t(ids.size());
    runner::set_gpu_attention(builtin_catalog(), vm["attention"].as<std::string>(), options);
    logits = cuda::GpuEngine::create(*model, options)->forward(ids, true);
  } else {
    Transformer tf(*model, make_attention(vm));
    KvCache cache = tf.new_cache(int64_t(ids.size()));
    SequenceStep step{&cache, ids, 0};
    logits = tf.forward({&step, 1});
  }
  const std::vector<int64_t> ids64(ids.begin(), ids.end());
  const int64_t T = int64_t(ids.size()), V = model->config.vocab_size;
  const std::string out = vm["out"].as<std::string>();
  write_safetensors(out,
                    {{"input_ids", DType::I64, {1, T}, {reinterpret_cast<const uint8_t*>(ids64.data()), ids64.size() * 8}},
                     {"logits", DType::F32, {1, T, V}, {reinterpret_cast<const uint8_t*>(logits.data()), logits.size() * 4}}},
                    {{"model", model->spec}, {"producer", "ctxlab logits"}});
  std::cerr << "wrote " << out << ": logits [1, " << T << ", " << V << "]\n";
  return 0;
}

}  // namespace ctx::cli
