// ctxlab logits: teacher-forced logits of a token sequence, as float32 safetensors
// (tensors "input_ids" int64 [1, T] and "logits" float32 [1, T, vocab], the layout of the
// fixtures' reference.safetensors).
#include <iostream>

#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/model/transformer.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

int cmd_logits(const Args& args) {
  po::options_description desc("logits options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("prompt-ids", po::value<std::string>()->required(), "token ids, e.g. 1,5,9")
      ("out", po::value<std::string>()->required(), "output .safetensors file");
  add_attention_option(desc);
  po::variables_map vm;
  if (!parse_options("logits", "--model SPEC --prompt-ids IDS --out FILE.safetensors", desc, args, vm)) return 0;
  const auto ids = parse_id_list(vm["prompt-ids"].as<std::string>(), "--prompt-ids");
  if (ids.empty()) fail("--prompt-ids is empty");
  auto model = load_model(vm["model"].as<std::string>());
  Transformer tf(*model, make_attention(vm));
  KvCache cache = tf.new_cache(int64_t(ids.size()));
  SequenceStep step{&cache, ids, 0};
  const std::vector<float> logits = tf.forward({&step, 1});
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
