// ctxlab bench gpu-timeline: where one batch-1 decode step's time goes on the GPU, kernel by kernel, as
// the CUDA graph replays it (programmatic dependent launch included). The steps of one greedy
// generation are traced through CUPTI (core/cuda/kernel_trace.h) and summarised by
// core/instruments/kernel_timeline.h: per kernel (name, grid, block), its launches per step, the time
// from start to end, and its increment, how far it moves the step's end. The increments add up to
// the step's span. The same generation untraced gives the ms/token to compare the traced span with.
#include <cstdio>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/kernel_trace.h"
#include "core/instruments/kernel_timeline.h"
#include "experiments/cli/bench_common.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"

namespace ctx::cli {

int bench_gpu_timeline(const Args& args) {
  po::options_description desc("bench gpu-timeline options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("context", po::value<int64_t>()->default_value(256), "prompt length before the traced steps")
      ("steps", po::value<int64_t>()->default_value(16), "decode steps traced (graph replays)")
      ("fused-rope", po::value<int>()->default_value(2), "GpuEngineOptions::fused_rope: 0, 1 or 2")
      ("decode-min-chunk", po::value<int64_t>()->default_value(32), "GpuEngineOptions::decode_min_chunk: keys per split-KV chunk at least")
      ("attention-overlap", po::value<int>()->default_value(0), "GpuEngineOptions::attention_overlap: 0 or 1");
  add_quant_option(desc);
  po::variables_map vm;
  if (!parse_options("bench gpu-timeline", "--model SPEC [options]", desc, args, vm)) return 0;
  const int64_t context = vm["context"].as<int64_t>(), steps = vm["steps"].as<int64_t>();
  if (context < 1 || steps < 1) fail("--context and --steps must be >= 1");

  auto model = load_model(vm["model"].as<std::string>());
  const std::string quant = apply_quant(vm, *model);
  print_model_line(*model, quant);
  cuda::GpuEngineOptions opt;
  opt.capacity = context + steps + 2;
  opt.fused_rope = vm["fused-rope"].as<int>();
  opt.decode_min_chunk = vm["decode-min-chunk"].as<int64_t>();
  opt.attention_overlap = vm["attention-overlap"].as<int>() == 1;
  auto engine = cuda::GpuEngine::create(*model, opt);
  const auto prompt = synthetic_tokens(context, model->config.vocab_size);
  // A generation produces steps + 1 tokens: the first comes from the prompt's forward, then one graph
  // replay per token. The first generation captures the graph. With the trace on, it is captured
  // again (set_fused_rope drops it), so that CUPTI sees the graph instantiated, by a generation of its
  // own: a capture inside the timed one would count in its ms/token.
  cuda::GpuTimings untraced, traced;
  engine->generate_greedy(prompt, steps + 1, {}, nullptr);
  engine->generate_greedy(prompt, steps + 1, {}, &untraced);
  cuda::start_kernel_trace();
  engine->set_fused_rope(opt.fused_rope);
  engine->generate_greedy(prompt, 2, {}, nullptr);
  engine->generate_greedy(prompt, steps + 1, {}, &traced);
  const std::vector<KernelRecord> records = cuda::stop_kernel_trace();
  auto launches = graph_launches(records);
  if (int64_t(launches.size()) < steps)
    fail("bench gpu-timeline: ", launches.size(), " graph launches were traced, fewer than the ", steps,
         " decode steps (", records.size(), " kernels in all)");
  launches.erase(launches.begin(), launches.end() - steps);  // the timed generation's (the capturing one's before)
  const StepTimeline t = summarize_steps(launches);
  std::printf("device: %s, weights %.2f GB (%s), context %lld, %lld steps traced\n", engine->device_name().c_str(),
              double(engine->weight_bytes()) / 1e9, quant.c_str(), (long long)context, (long long)steps);
  std::printf("ms/token: %.3f untraced, %.3f traced (CUDA events); traced span of a step %.3f ms, %zu kernels\n\n",
              untraced.decode_ms / double(untraced.decode_steps), traced.decode_ms / double(traced.decode_steps),
              t.span_us * 1e-3, launches.front().size());
  std::printf("| kernel | grid x block | registers | launches per step | us per step, start to end | increment, us per step "
              "| share of the span | mean start - previous end, us |\n|---|---|---|---|---|---|---|---|\n");
  for (const TimelineKernel& k : t.kernels)
    std::printf("| %s | %lld x %lld | %d | %.0f | %.2f | %.2f | %.3f | %.2f |\n", k.name.c_str(), (long long)k.grid,
                (long long)k.block, k.registers, k.launches, k.duration_us, k.increment_us, k.increment_us / t.span_us,
                k.gap_us);
  return 0;
}

}  // namespace ctx::cli
