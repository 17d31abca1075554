// ctxlab generate: greedy continuation of one prompt, streamed to stdout, timings to stderr.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "core/base/error.h"
#include "core/model/generate.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

int cmd_generate(const Args& args) {
  po::options_description desc("generate options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("prompt", po::value<std::string>(), "prompt text (tokenized with the model's tokenizer, BOS prepended)")
      ("prompt-ids", po::value<std::string>(), "prompt as token ids, e.g. 1,5,9 (instead of --prompt)")
      ("max-new-tokens", po::value<int64_t>()->default_value(64), "tokens to generate at most")
      ("tokenizer", po::value<std::string>()->default_value(""), "tokenizer file (default: found beside the model)")
      ("no-bos", "do not prepend BOS to --prompt text")
      ("ignore-eos", "do not stop on the model's end-of-sequence ids")
      ("print-ids", "print the generated ids on one line instead of text");
  add_attention_option(desc);
  add_quant_option(desc);
  add_kv_option(desc);
  add_kv_quant_option(desc);
  po::variables_map vm;
  if (!parse_options("generate", "--model SPEC (--prompt TEXT | --prompt-ids IDS) [options]", desc, args, vm)) return 0;
  if (vm.count("prompt") == vm.count("prompt-ids")) fail("give exactly one of --prompt TEXT or --prompt-ids IDS");
  const int64_t max_new = vm["max-new-tokens"].as<int64_t>();
  if (max_new < 0) fail("--max-new-tokens must be >= 0, got ", max_new);

  auto model = load_model(vm["model"].as<std::string>());
  apply_quant(vm, *model);
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> prompt;
  if (vm.count("prompt")) {
    tok = load_model_tokenizer(*model, vm["tokenizer"].as<std::string>());
    prompt = tok->encode(vm["prompt"].as<std::string>(), !vm.count("no-bos"));
    if (prompt.empty()) fail("--prompt is empty and --no-bos was given: nothing to condition on");
  } else {
    prompt = parse_id_list(vm["prompt-ids"].as<std::string>(), "--prompt-ids");
    if (prompt.empty()) fail("--prompt-ids is empty");
    if (!vm.count("print-ids") && !(model->tokenizer_path.empty() && vm["tokenizer"].as<std::string>().empty()))
      tok = load_model_tokenizer(*model, vm["tokenizer"].as<std::string>());
  }
  const bool print_ids = vm.count("print-ids") || !tok;

  Transformer tf(*model, make_attention(vm));
  tf.set_kv_compressor(make_kv_compressor(vm));
  tf.set_kv_quantization(make_kv_quant(vm));
  GenerateOptions opt;
  opt.max_new_tokens = max_new;
  if (!vm.count("ignore-eos")) opt.stop_ids = model->stop_ids;
  int32_t prev = prompt.back();
  if (!print_ids) {
    opt.on_token = [&](size_t, int32_t t) {
      if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), t) == opt.stop_ids.end()) {
        std::cout << tok->decode_next(prev, t) << std::flush;
      }
      prev = t;
    };
  }
  GenerateTimings tm;
  const auto result = generate_greedy(tf, {prompt}, opt, &tm);
  if (print_ids) {
    for (size_t i = 0; i < result[0].tokens.size(); ++i) std::cout << (i ? "," : "") << result[0].tokens[i];
  }
  std::cout << std::endl;
  const auto n_new = int64_t(result[0].tokens.size());
  std::fprintf(stderr, "prompt %zu tokens | TTFT %.2f ms (%.1f tok/s prefill) | %lld new tokens",
               prompt.size(), tm.prefill_seconds * 1e3, double(prompt.size()) / tm.prefill_seconds, (long long)n_new);
  if (tm.decode_steps > 0)
    std::fprintf(stderr, " | decode %.3f ms/token (%.1f tok/s)", tm.decode_seconds * 1e3 / double(tm.decode_steps),
                 double(tm.decode_steps) / tm.decode_seconds);
  std::fprintf(stderr, " | KV %s reserved, %s used%s\n", human_bytes(double(tm.kv_bytes_reserved)).c_str(),
               human_bytes(double(tm.kv_bytes_used)).c_str(), result[0].stopped ? " | stopped on end-of-sequence" : "");
  return 0;
}

}  // namespace ctx::cli
