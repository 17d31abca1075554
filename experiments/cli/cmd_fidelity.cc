// ctxlab fidelity: how far a modification moves a model. The reference is the model as loaded
// (float weights, no KV compression); the test side is the same model with the given modifications
// (--quant weights, --kv compressor, --attention backend).
// Both run the schedule of eval/model_fidelity.h over the text's tokens and the llama.cpp
// --kl-divergence statistics are printed, with weight and KV bytes of both sides.
#include <cstdio>

#include "core/base/error.h"
#include "core/base/mapped_file.h"
#include "eval/model_fidelity.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

int cmd_fidelity(const Args& args) {
  po::options_description desc("fidelity options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("text", po::value<std::string>(), "text file to score (tokenized with the model's tokenizer, BOS prepended)")
      ("ids", po::value<std::string>(), "token ids to score instead of --text, e.g. 1,5,9")
      ("tokenizer", po::value<std::string>()->default_value(""), "tokenizer file (default: found beside the model)")
      ("max-tokens", po::value<int64_t>()->default_value(2048), "score at most this many leading tokens of the text")
      ("context", po::value<int64_t>()->default_value(-1),
       "tokens prefilled in one step before token-by-token decoding (-1: three quarters of the scored tokens)")
      ("greedy", po::value<int64_t>()->default_value(32), "greedy tokens generated from the context by both sides (0: none)")
      ("reference-attention", po::value<std::string>()->default_value(""), "attention spec of the reference (default: --attention)");
  add_attention_option(desc);
  add_quant_option(desc);
  add_kv_option(desc);
  add_kv_quant_option(desc);
  po::variables_map vm;
  if (!parse_options("fidelity", "--model SPEC (--text FILE | --ids IDS) [options]", desc, args, vm)) return 0;
  if (vm.count("text") == vm.count("ids")) fail("give exactly one of --text FILE or --ids IDS");
  const int64_t max_tokens = vm["max-tokens"].as<int64_t>(), greedy = vm["greedy"].as<int64_t>();
  if (max_tokens < 2) fail("--max-tokens must be >= 2, got ", max_tokens);
  if (greedy < 0) fail("--greedy must be >= 0, got ", greedy);

  auto model = load_model(vm["model"].as<std::string>());
  // The test side has its own copy of the weights when they are quantized (the reference stays float).
  const bool quantized = vm["quant"].as<std::string>() != "none";
  std::unique_ptr<Model> test_model = quantized ? load_model(vm["model"].as<std::string>()) : nullptr;
  const std::string quant = test_model ? apply_quant(vm, *test_model) : "none";
  std::vector<int32_t> tokens;
  if (vm.count("text")) {
    auto tok = load_model_tokenizer(*model, vm["tokenizer"].as<std::string>());
    tokens = tok->encode(read_file(vm["text"].as<std::string>()), true);
  } else {
    tokens = parse_id_list(vm["ids"].as<std::string>(), "--ids");
  }
  if (int64_t(tokens.size()) > max_tokens) tokens.resize(size_t(max_tokens));
  if (tokens.size() < 2) fail("the text has ", tokens.size(), " token(s); fidelity needs at least 2");
  const int64_t n = int64_t(tokens.size());
  ModelFidelityOptions options;
  options.context = vm["context"].as<int64_t>() < 0 ? std::max<int64_t>(1, n * 3 / 4) : vm["context"].as<int64_t>();
  options.greedy_tokens = greedy;

  const std::string ref_attention = vm["reference-attention"].as<std::string>();
  Transformer reference(*model, ref_attention.empty() ? make_attention(vm) : make_attention_spec(ref_attention));
  Transformer test(test_model ? *test_model : *model, make_attention(vm));
  test.set_kv_compressor(make_kv_compressor(vm));
  test.set_kv_quantization(make_kv_quant(vm));
  const ModelFidelityReport r = compare_models(reference, test, tokens, options);

  const FidelityStats& s = r.stats;
  std::printf("tokens %lld (prefill %lld, then %lld decode steps) | scored positions %lld\n", (long long)n,
              (long long)r.context, (long long)(n - 1 - r.context), (long long)s.positions);
  std::printf("KL divergence (nats): mean %.6g | median %.6g | p99 %.6g | max %.6g\n", s.kl_mean, s.kl_median, s.kl_p99,
              s.kl_max);
  std::printf("top-1 agreement: %.4f\n", s.top1_agreement);
  std::printf("perplexity: reference %.4f | test %.4f | ratio %.6f\n", s.ppl_ref, s.ppl_test, s.ppl_ratio);
  if (greedy > 0)
    std::printf("greedy: %lld of %zu tokens identical before the first divergence\n", (long long)r.greedy_agreement,
                r.greedy_ref.size());
  std::printf("weights: reference %s, test %s (%s) | KV at the end (test kv-quant %s): reference %s held (%s valid), test %s held (%s valid)\n",
              human_bytes(double(model->weights.bytes_held())).c_str(),
              human_bytes(double((test_model ? *test_model : *model).weights.bytes_held())).c_str(), quant.c_str(),
              test.kv_quantization().spec.c_str(),
              human_bytes(double(r.ref_kv_reserved)).c_str(),
              human_bytes(double(r.ref_kv_used)).c_str(), human_bytes(double(r.test_kv_reserved)).c_str(),
              human_bytes(double(r.test_kv_used)).c_str());
  return 0;
}

}  // namespace ctx::cli
