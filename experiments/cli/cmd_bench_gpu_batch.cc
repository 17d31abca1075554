// ctxlab bench gpu-batch: batched greedy decode on the GPU (GpuEngine::generate_greedy_batch) over a
// matrix of context lengths and batch sizes, against the memory-bandwidth roofline of a batched step
// (every weight once plus every sequence's K/V, over the copy bandwidth measured in the same run).
// One engine serves the whole matrix: paged KV with a pool of --kv-pool-gb (a point that needs more
// blocks than the pool holds prints `oom`, as the runner would), or contiguous KV holding
// max(batch) * (max(context) + tokens) positions. With --mixed, the sequences of a batch have mixed
// lengths (context/4 .. context) and the table shows the KV memory each layout would hold for them.
// With --quant the weights are quantized by that plugin and stay packed on the device (batches of up
// to 8 sequences read them once per step through the batched GEMV).
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/system_info.h"
#include "core/cuda/gpu_engine.h"
#include "experiments/cli/bench_common.h"
#include "experiments/cli/cli_common.h"
#include "experiments/runner/trial_engine.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

int bench_gpu_batch(const Args& args) {
  po::options_description desc("bench gpu-batch options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("context", po::value<std::string>()->default_value("128,1024,4096"), "prompt lengths, e.g. 128,1024,8192")
      ("batch", po::value<std::string>()->default_value("1,8,32"), "sequences decoded together, e.g. 1,4,16,32")
      ("tokens", po::value<int64_t>()->default_value(32), "timed decode steps per round")
      ("rounds", po::value<int>()->default_value(3), "rounds per point (median reported; one more to warm up)")
      ("kv-block-size", po::value<int64_t>()->default_value(16), "paged KV block size (0: contiguous)")
      ("kv-pool-gb", po::value<double>()->default_value(40.0), "paged: KV pool size in GB")
      ("mixed", "mixed prompt lengths in a batch (context/4 .. context) instead of equal ones")
      ("copy-mib", po::value<int64_t>()->default_value(2048), "buffer size of the copy-bandwidth measurement");
  add_quant_option(desc);
  po::variables_map vm;
  if (!parse_options("bench gpu-batch", "--model SPEC [options]", desc, args, vm)) return 0;
  const auto contexts = parse_size_list(vm["context"].as<std::string>(), "--context");
  const auto batches = parse_size_list(vm["batch"].as<std::string>(), "--batch");
  const int64_t tokens = vm["tokens"].as<int64_t>();
  const int rounds = vm["rounds"].as<int>();
  const int64_t block = vm["kv-block-size"].as<int64_t>();
  const bool mixed = vm.count("mixed") > 0;
  if (tokens < 1 || rounds < 1) fail("--tokens and --rounds must be >= 1");
  const double copy_bw = cuda::measure_copy_bandwidth(vm["copy-mib"].as<int64_t>() << 20, 20);

  auto model = load_model(vm["model"].as<std::string>());
  const std::string quant = apply_quant(vm, *model);  // packed on the device: batches of <= 8 share one pass
  print_model_line(*model, quant);
  const ModelConfig c = model->config;
  const int64_t max_batch = *std::max_element(batches.begin(), batches.end());
  const int64_t max_context = *std::max_element(contexts.begin(), contexts.end());
  const int64_t kv_per_position = 2 * c.num_layers * c.kv_dim() * 2;  // K and V, bf16
  cuda::GpuEngineOptions opt;
  opt.capacity = max_context + tokens + 1;
  opt.max_batch = max_batch;
  opt.prefill_chunk = std::max<int64_t>(2048, max_batch);
  opt.kv_block_size = block;
  if (block > 0) opt.kv_pool_positions = int64_t(vm["kv-pool-gb"].as<double>() * 1e9) / kv_per_position;
  auto engine = cuda::GpuEngine::create(*model, opt);
  model.reset();  // the host copy of the weights is no longer needed
  release_free_memory();
  const std::string layout = block > 0 ? "paged " + std::to_string(block) : "contiguous";
  // Paged: the pool grows as sequences take blocks, up to kv_pool_positions.
  const double kv_gb = double(block > 0 ? opt.kv_pool_positions * kv_per_position : engine->kv_cache_bytes()) / 1e9;
  std::printf("device: %s, weights %.2f GB (%s), KV %s %s %.2f GB, copy bandwidth %.3f TB/s; %s prompts\n\n",
              engine->device_name().c_str(), double(engine->weight_bytes()) / 1e9,
              runner::plugin_name(quant) == "none" ? "bf16" : quant.c_str(), layout.c_str(),
              block > 0 ? "growing up to" : "holding", kv_gb, copy_bw / 1e12, mixed ? "mixed-length" : "equal-length");
  std::printf("| context | batch | KV in use GB | contiguous would hold GB | prefill s | ms/step | tok/s | roofline tok/s "
              "| ratio | status |\n|---|---|---|---|---|---|---|---|---|---|\n");
  const double weights_read = double(engine->bytes_read_per_token(0));
  for (int64_t ctx_len : contexts)
    for (int64_t batch : batches) {
      const auto lengths = mixed ? mixed_lengths(ctx_len, batch) : std::vector<int64_t>(size_t(batch), ctx_len);
      std::vector<std::vector<int32_t>> prompts;
      for (size_t s = 0; s < lengths.size(); ++s) {
        auto p = synthetic_tokens(lengths[s] + int64_t(s), c.vocab_size);  // distinct prompts
        p.erase(p.begin(), p.begin() + int64_t(s));
        prompts.push_back(std::move(p));
      }
      const int64_t positions = std::accumulate(lengths.begin(), lengths.end(), int64_t(0)) + batch * tokens / 2;
      const double contiguous_gb = double(batch * (ctx_len + tokens) * kv_per_position) / 1e9;
      std::vector<double> ms, prefill;
      try {
        for (int r = 0; r < rounds + 1; ++r) {
          cuda::GpuTimings tm;
          engine->generate_greedy_batch(prompts, tokens + 1, {}, &tm);
          if (r == 0) continue;  // warm-up (graph capture for this batch size, cuBLAS heuristics)
          ms.push_back(tm.decode_ms / double(tm.decode_steps));
          prefill.push_back(tm.prefill_ms / 1e3);
        }
      } catch (const cuda::CudaOutOfMemory& e) {
        std::printf("| %lld | %lld | - | %.2f | - | - | - | - | - | oom |\n", (long long)ctx_len, (long long)batch,
                    contiguous_gb);
        continue;
      }
      const double ms_step = median(ms);
      const double bytes = weights_read + double(positions * kv_per_position);
      const double roofline = double(batch) * copy_bw / bytes;
      const double tok_s = double(batch) * 1e3 / ms_step;
      std::printf("| %lld | %lld | %.2f | %.2f | %.2f | %.3f | %.1f | %.1f | %.3f | ok |\n", (long long)ctx_len,
                  (long long)batch, double(engine->kv_cache_bytes_in_use()) / 1e9, contiguous_gb, median(prefill), ms_step,
                  tok_s, roofline, tok_s / roofline);
    }
  const auto mem = engine->memory();
  std::printf("\ndevice memory (ctxlab allocator): peak %.2f GB, reserved %.2f GB\n", mem.peak_bytes / 1e9,
              mem.reserved_bytes / 1e9);
  return 0;
}

}  // namespace ctx::cli
