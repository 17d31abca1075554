// ctxlab bench gpu-decode: batch-1 greedy decode on the GPU (core/cuda/gpu_engine.h) against the
// memory-bandwidth roofline measured in the same run (device-to-device copy bandwidth / bytes one
// decode step must read: every weight once plus the K/V cache and any recurrent state), with
// --engine-per-context an engine sized for each context so that its memory columns are that
// context's (hybrid models: KV of the attention layers plus the Mamba-2 state). With --quant the
// model's linear layers are quantized by that plugin on the host and stay packed on the device, so
// the roofline counts the quantized bytes; the GEMV table then times the quantized kernel on the
// model's own layer-0 matrices against the bf16 kernel on the same shapes. With --kv a KV compressor
// (gpu_kv_policy.h) runs after the prompt, so that the stage table's attention time is that of the
// compressed cache (bytes/token and the roofline still count the uncompressed KV). --attention picks
// the attention backend as the runner maps it (runner::set_gpu_attention), e.g. eager: the peak GB
// column then shows its materialised score matrix.
// ctxlab bench gpu-attention: the decode attention kernel alone (core/cuda/gpu_attention.h) over
// context lengths, batch sizes (mixed lengths) and KV layouts (contiguous, paged block sizes, and
// with --kivi-bits KIVI-quantized KV fused into the kernel), its K/V read rate against the same
// copy bandwidth and each layout's time against the first one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/system_info.h"
#include "core/cuda/gpu_attention.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/cuda/gpu_quant_gemv.h"
#include "core/quant/quantized_matrix.h"
#include "experiments/cli/bench_common.h"
#include "experiments/cli/cli_common.h"
#include "experiments/cli/commands.h"
#include "experiments/runner/trial_engine.h"
#include "plugins/register_all.h"

namespace ctx::cli {

namespace {

using runner::plugin_name;

// n normal floats (seeded): inputs for the GEMV timings.
std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// The quantized decode GEMV on layer 0's matrices of `model` (and a quantized classifier) against the
// bf16 GEMV on the same shapes: time, bytes read, read rate against the copy bandwidth.
void print_quant_gemv_table(const Model& model, const std::string& quant, double copy_bw) {
  const LayerWeights& l = model.weights.layers.at(0);
  std::vector<std::pair<const char*, const WeightMatrix*>> mats = {
      {"q_proj", &l.wq}, {"o_proj", &l.wo}, {"gate_proj", &l.w_gate}, {"down_proj", &l.w_down}};
  if (model.weights.lm_head.quant) mats.push_back({"lm_head", &model.weights.lm_head});
  std::printf("\n%s GEMV (packed on the device) vs the bf16 GEMV, same shapes\n\n", quant.c_str());
  std::printf("| matrix [rows, cols] | bits/weight | bf16 us | bf16 GB/s | bf16 ratio | quant us | quant MB | quant GB/s "
              "| quant ratio vs copy | speed-up |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [name, m] : mats) {
    if (!m->quant) continue;  // kept in float32 by the plugin
    const double bf16_bw = cuda::measure_gemv_bandwidth(m->rows, m->cols, 10);
    const double bf16_us = double(m->rows * m->cols * 2 + m->cols * 2) / bf16_bw * 1e6;
    const cuda::GemvTiming t = cuda::measure_gemv(*m, 10);
    std::printf("| %s [%lld, %lld] | %.3f | %.2f | %.0f | %.3f | %.2f | %.2f | %.0f | %.3f | %.2fx |\n", name,
                (long long)m->rows, (long long)m->cols, m->quant->bits_per_weight(), bf16_us, bf16_bw / 1e9,
                bf16_bw / copy_bw, t.us, double(t.bytes) / 1e6, t.bytes_per_s / 1e9, t.bytes_per_s / copy_bw,
                bf16_us / t.us);
  }
  // A decoder layer's four GEMVs after attention, as decode runs them: four launches, or one chain.
  if (!l.wo.quant || !l.w_gate.quant || !l.w_up.quant || !l.w_down.quant || !l.wq.quant || !l.wk.quant || !l.wv.quant ||
      l.attn_norm.empty() || l.ffn_norm.empty())
    return;
  const int64_t d = model.config.hidden_size;
  const std::vector<float> x = random_floats(l.wo.cols, 7), hidden = random_floats(d, 8);
  cuda::GpuLayerGemvs g;
  g.o = {&l.wo}, g.gate_up = {&l.w_gate, &l.w_up}, g.down = {&l.w_down}, g.qkv = {&l.wq, &l.wk, &l.wv};
  g.x = x, g.hidden = hidden;
  g.ffn_norm = std::span<const float>(l.ffn_norm.data, size_t(l.ffn_norm.size));
  g.attn_norm = std::span<const float>(l.attn_norm.data, size_t(l.attn_norm.size));
  g.eps = float(model.config.rms_norm_eps);
  cuda::LayerGemvsTiming t;
  try {
    t = cuda::measure_layer_gemvs(g, 16, 10);
  } catch (const Error& e) {
    std::printf("\nlayer GEMV chain: %s\n", e.what());
    return;
  }
  const double copy_us = double(t.bytes) / copy_bw * 1e6;
  std::printf("\nOne layer's o_proj, norm + gate_up + SwiGLU, down_proj, norm + qkv (%.1f MB): 16 layers in a CUDA graph, "
              "two copies alternating\n\n| launches | us per layer | ratio vs copy | speed-up |\n|---|---|---|---|\n",
              double(t.bytes) / 1e6);
  std::printf("| four kernels | %.2f | %.3f | 1.00x |\n", t.separate_us, copy_us / t.separate_us);
  const auto row = [&](const std::string& what, double us) {
    std::printf("| %s | %.2f | %.3f | %.3fx |\n", what.c_str(), us, copy_us / us, t.separate_us / us);
  };
  row("one chain, 48 KiB ring, generation barrier", t.chain_us[0]);
  row("one chain, 96 KiB ring, generation barrier", t.chain_us[1]);
  row("one chain, 144 KiB ring, generation barrier", t.chain_us[2]);
  row("one chain, 48 KiB ring, counting barrier (the default)", t.counting_us);
  row("four chains of one stage each (48 KiB)", t.single_stage_us);
  row("four kernels, the norms from the sums of squares o_proj and down_proj leave (norm_partials)", t.partials_us);
}

// "on", "off" or "both" as the settings to run.
std::vector<bool> on_off_runs(const std::string& mode, const char* option) {
  if (mode != "on" && mode != "off" && mode != "both") fail(option, " ", mode, " must be on, off or both");
  return mode == "both" ? std::vector<bool>{false, true} : std::vector<bool>{mode == "on"};
}

}  // namespace

int bench_gpu_decode(const Args& args) {
  po::options_description desc("bench gpu-decode options");
  desc.add_options()
      ("model", po::value<std::string>()->required(), "checkpoint folder, llama2.c .bin, or random:CONFIG.json[:SEED]")
      ("context", po::value<std::string>()->default_value("1024"), "prompt lengths before the timed steps, e.g. 1024,8192")
      ("tokens", po::value<int64_t>()->default_value(128), "timed decode steps per round")
      ("rounds", po::value<int>()->default_value(5), "rounds per context length (median reported)")
      ("no-graphs", "launch each decode step's kernels instead of replaying a CUDA graph")
      ("no-stages", "skip the per-stage breakdown of one decode step (two more prompt forwards per engine)")
      ("engine-per-context", "a new engine (KV capacity = context + tokens + 1) for each context length, so that "
                             "the KV and peak memory columns are that context's")
      ("kv-block-size", po::value<int64_t>()->default_value(0), "paged KV with blocks of this many positions (0: contiguous)")
      ("kv", po::value<std::string>()->default_value("none"),
       "KV compression after each prompt chunk (and during decode where the plugin says): kv plugin specs "
       "separated by ';', each timed with its own engine on the same model, e.g. "
       "'none;l2norm:keep_ratio=0.25,skip_layers=[];h2o:keep_ratio=0.25'")
      ("attention-prefetch", po::value<std::string>()->default_value("0"),
       "decode attention prefetches a warp's next keys: 0, 1, -1 = MHA only; a list such as 0,1 times each on one engine")
      ("decode-min-chunk", po::value<std::string>()->default_value("32"),
       "decode attention: keys per split-KV chunk at least (0: none); a list such as 32,128 times each on one engine")
      ("attention", po::value<std::string>()->default_value("sdpa"),
       "attention backend spec as the runner runs it on the GPU: eager, sdpa, flash, flex:..., paged:block_size=N")
      ("gemv-chain", po::value<std::string>()->default_value("off"),
       "quantized decode: a layer's GEMVs as one persistent kernel: on, off, or both (each context timed both ways on "
       "one engine)")
      ("fused-rope", po::value<std::string>()->default_value("2"),
       "decode: RoPE and the KV write inside the attention launch (GpuEngineOptions::fused_rope): 0 never, 1 on the "
       "CUDA-core passes, 2 on the tensor-core (GQA) pass too; a list such as 0,1,2 times each on one engine")
      ("attention-overlap", po::value<std::string>()->default_value("0"),
       "decode: attention beside the qkv GEMV, reading each output as it is stored (GpuEngineOptions::attention_overlap): "
       "0, 1, or "
       "a list such as 0,1 timed each on one engine")
      ("norm-partials", po::value<std::string>()->default_value("off"),
       "quantized decode: o_proj and down_proj leave the hidden state's sums of squares for the next fused RMSNorm "
       "(GpuEngineOptions::norm_partials): on, off, or both (each context timed both ways on one engine)")
      ("copy-mib", po::value<int64_t>()->default_value(2048), "buffer size of the copy-bandwidth measurement");
  add_quant_option(desc);
  po::variables_map vm;
  if (!parse_options("bench gpu-decode", "--model SPEC [options]", desc, args, vm)) return 0;
  const auto contexts = parse_size_list(vm["context"].as<std::string>(), "--context");
  const int64_t tokens = vm["tokens"].as<int64_t>();
  const int rounds = vm["rounds"].as<int>();
  const bool per_context = vm.count("engine-per-context") > 0;
  if (tokens < 1 || rounds < 1) fail("--tokens and --rounds must be >= 1");
  const std::vector<bool> chain_runs = on_off_runs(vm["gemv-chain"].as<std::string>(), "--gemv-chain");
  const std::vector<bool> partials_runs = on_off_runs(vm["norm-partials"].as<std::string>(), "--norm-partials");
  const auto rope_runs = parse_size_list(vm["fused-rope"].as<std::string>(), "--fused-rope");
  for (int64_t m : rope_runs)
    if (m < 0 || m > 2) fail("--fused-rope ", m, " must be 0, 1 or 2");
  const auto min_chunk_runs = parse_size_list(vm["decode-min-chunk"].as<std::string>(), "--decode-min-chunk");
  const auto overlap_runs = parse_size_list(vm["attention-overlap"].as<std::string>(), "--attention-overlap");
  for (int64_t m : overlap_runs)
    if (m > 1) fail("--attention-overlap ", m, " must be 0 or 1");
  const std::string prefetch_text = vm["attention-prefetch"].as<std::string>();
  if (prefetch_text.find('-') != std::string::npos && prefetch_text != "-1")
    fail("--attention-prefetch '", prefetch_text, "' must be 0, 1, -1 or a list of 0 and 1");
  const auto prefetch_runs =
      prefetch_text == "-1" ? std::vector<int64_t>{-1} : parse_size_list(prefetch_text, "--attention-prefetch");
  for (int64_t m : prefetch_runs)
    if (m > 1) fail("--attention-prefetch ", m, " must be 0, 1 or -1");
  // Every --kv spec resolved before any GPU work: a bad one fails first.
  std::vector<std::pair<PluginSpec, cuda::GpuKvPolicy>> kv_runs;
  const std::string kv_list = vm["kv"].as<std::string>();
  for (size_t from = 0; from <= kv_list.size();) {
    const size_t to = std::min(kv_list.find(';', from), kv_list.size());
    const PluginSpec spec = builtin_catalog().kv.resolve(kv_list.substr(from, to - from));
    from = to + 1;
    kv_runs.emplace_back(spec, cuda::gpu_kv_policy(spec));
  }
  const double copy_bw = cuda::measure_copy_bandwidth(vm["copy-mib"].as<int64_t>() << 20, 20);

  auto model = load_model(vm["model"].as<std::string>());
  const std::string quant = apply_quant(vm, *model);
  print_model_line(*model, quant);
  const ModelConfig c = model->config;
  if (plugin_name(quant) == "none") {
    // The decode GEMV alone on each matrix shape of the model: how close the kernel gets to the copy rate.
    std::printf("\n| GEMV [rows, cols] | GB/s | ratio vs copy |\n|---|---|---|\n");
    const int64_t qkv_rows = c.q_dim() + 2 * c.kv_dim();
    std::vector<std::pair<int64_t, int64_t>> shapes{{qkv_rows, c.hidden_size}, {c.hidden_size, c.q_dim()},
                                                    {2 * c.intermediate_size, c.hidden_size},
                                                    {c.hidden_size, c.intermediate_size}, {c.vocab_size, c.hidden_size}};
    if (c.num_mamba_layers() > 0)  // Mamba-2 in_proj and out_proj
      shapes.insert(shapes.begin() + 2, {{c.mamba.in_proj_dim(), c.hidden_size}, {c.hidden_size, c.mamba.intermediate()}});
    for (auto [rows, cols] : shapes) {
      const double bw = cuda::measure_gemv_bandwidth(rows, cols, 10);
      std::printf("| [%lld, %lld] | %.0f | %.3f |\n", (long long)rows, (long long)cols, bw / 1e9, bw / copy_bw);
    }
  } else {
    print_quant_gemv_table(*model, quant, copy_bw);
  }
  for (size_t run = 0; run < kv_runs.size(); ++run) {
    const auto& [kv_spec, kv_policy] = kv_runs[run];
    const bool last = run + 1 == kv_runs.size();
    cuda::GpuEngineOptions opt;
    opt.capacity = (per_context ? contexts.front() : *std::max_element(contexts.begin(), contexts.end())) + tokens + 1;
    opt.use_graphs = !vm.count("no-graphs");
    opt.kv_block_size = vm["kv-block-size"].as<int64_t>();
    opt.kv = kv_policy;
    opt.attention_prefetch = int(prefetch_runs.front());
    opt.decode_min_chunk = min_chunk_runs.front();
    opt.attention_overlap = overlap_runs.front() == 1;
    opt.norm_partials = partials_runs.front();
    const std::string attention = vm["attention"].as<std::string>();
    runner::set_gpu_attention(builtin_catalog(), attention, opt);  // paged: its block size over --kv-block-size
    auto engine = cuda::GpuEngine::create(*model, opt);
    if (!per_context && last) {
      model.reset();  // the host copy of the weights is no longer needed
      release_free_memory();
    }
    std::printf("device: %s, weights %.2f GB (%s), attention %s, KV %s, compression %s, copy bandwidth %.3f TB/s (read + "
                "write, median of 20)\n",
                engine->device_name().c_str(), double(engine->weight_bytes()) / 1e9,
                plugin_name(quant) == "none" ? "bf16" : quant.c_str(), attention.c_str(),
                opt.kv_block_size > 0 ? str_cat("paged (block ", opt.kv_block_size, ")").c_str() : "contiguous",
                kv_spec.canonical().c_str(), copy_bw / 1e12);
    std::printf("\n| model | context | graphs | GEMV chain | norm partials | fused RoPE | min chunk | key prefetch | overlap | bytes/token | TTFT ms | prefill tok/s | ms/token | tok/s | "
                "roofline tok/s | ratio | KV+state MB in use | peak GB |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int64_t ctx_len : contexts) {
      if (per_context && engine->capacity() != ctx_len + tokens + 1) {
        engine.reset();  // its memory back to the driver before the next engine takes its own
        opt.capacity = ctx_len + tokens + 1;
        engine = cuda::GpuEngine::create(*model, opt);
      }
      for (bool chain : chain_runs)
      for (bool partials : partials_runs)
      for (int64_t rope : rope_runs)
      for (int64_t min_chunk : min_chunk_runs)
      for (int64_t prefetch : prefetch_runs)
      for (int64_t overlap : overlap_runs) {
        engine->set_gemv_chain(chain);
        engine->set_norm_partials(partials);
        engine->set_attention_overlap(overlap == 1);
        engine->set_fused_rope(int(rope));
        engine->set_decode_min_chunk(min_chunk);
        engine->set_attention_prefetch(int(prefetch));
        engine->reset_peak_memory();
        const auto prompt = synthetic_tokens(ctx_len, c.vocab_size);
        std::vector<double> ms, ttft;
        for (int r = 0; r < rounds + 1; ++r) {
          cuda::GpuTimings tm;
          engine->generate_greedy(prompt, tokens + 1, {}, &tm);
          if (r == 0) continue;  // warm-up (graph capture, cuBLAS heuristics)
          ms.push_back(tm.decode_ms / double(tm.decode_steps));
          ttft.push_back(tm.prefill_ms);
        }
        const double ms_tok = median(ms), ttft_ms = median(ttft);
        const double bytes = double(engine->bytes_read_per_token(ctx_len + tokens / 2));
        const double roofline = copy_bw / bytes;
        std::printf("| %s | %lld | %s | %s | %s | %s | %lld | %lld | %s | %.3f GB | %.1f | %.0f | %.3f | %.1f | %.1f | %.3f | %.1f | %.2f |\n",
                    c.summary().c_str(), (long long)ctx_len, opt.use_graphs && !opt.eager_attention ? "yes" : "no",
                    plugin_name(quant) == "none" ? "-" : chain ? "on" : "off",
                    plugin_name(quant) == "none" ? "-" : partials ? "on" : "off", rope == 0 ? "off" : rope == 1 ? "1" : "2", (long long)min_chunk, (long long)prefetch, overlap == 1 ? "on" : "off", bytes / 1e9, ttft_ms, double(ctx_len) / (ttft_ms * 1e-3), ms_tok, 1e3 / ms_tok,
                    roofline, (1e3 / ms_tok) / roofline, double(engine->kv_cache_bytes_in_use()) / 1e6,
                    double(engine->memory().peak_bytes) / 1e9);
        std::fflush(stdout);  // each row as it is measured (a run cut short keeps what it measured)
      }
    }
    // Per-stage breakdown of one step at the longest context (kernels one by one, events between stages).
    if (!vm.count("no-stages")) {
      // The longest context the last engine holds (every one of them without --engine-per-context).
      const int64_t longest = std::min(*std::max_element(contexts.begin(), contexts.end()), engine->capacity() - 1);
      const auto prompt = synthetic_tokens(longest, c.vocab_size);
      engine->reset();
      engine->forward(prompt, false);
      engine->profile_decode_step();  // warm-up
      engine->reset();
      engine->forward(prompt, false);
      const auto stages = engine->profile_decode_step();
      double total = 0;
      for (const auto& s : stages) total += s.second;
      std::printf("\none decode step by stage (context %zu; no graph, an event after every stage: total %.3f ms)\n\n",
                  prompt.size(), total);
      std::printf("| stage | ms per step (all layers) | share |\n|---|---|---|\n");
      for (const auto& [name, ms] : stages) std::printf("| %s | %.3f | %.3f |\n", name.c_str(), ms, ms / total);
    }
    const auto mem = engine->memory();
    std::printf("\ndevice memory (ctxlab allocator): current %.2f GB, peak %.2f GB, reserved %.2f GB; cudaMemGetInfo: %.2f of %.2f GB free\n",
                mem.current_bytes / 1e9, mem.peak_bytes / 1e9, mem.reserved_bytes / 1e9, mem.device_free_bytes / 1e9,
                mem.device_total_bytes / 1e9);
  }
  return 0;
}

std::vector<int64_t> mixed_lengths(int64_t context, int64_t batch) {
  std::vector<int64_t> out(size_t(batch), context);
  for (int64_t s = 1; s < batch; ++s) {
    const double f = std::fmod(0.6180339887 * double(s), 1.0);
    out[size_t(s)] = std::max<int64_t>(1, int64_t(double(context) * (0.25 + 0.75 * f)));
  }
  return out;
}

int bench_gpu_attention(const Args& args) {
  po::options_description desc("bench gpu-attention options");
  desc.add_options()
      ("heads", po::value<int64_t>()->default_value(32), "query heads")
      ("kv-heads", po::value<int64_t>()->default_value(32), "KV heads")
      ("head-dim", po::value<int64_t>()->default_value(128), "head dimension (<= 256)")
      ("context", po::value<std::string>()->default_value("1024,4096,16384,65536"), "cached positions, e.g. 1024,8192")
      ("batch", po::value<std::string>()->default_value("1"),
       "sequences per launch, e.g. 1,8,32 (> 1: mixed lengths from context/4 to context)")
      ("block-size", po::value<std::string>()->default_value("0"),
       "KV layouts: 0 = contiguous, else paged with blocks of this many positions, e.g. 0,8,16,128")
      ("splits", po::value<std::string>()->default_value("0"), "split-KV chunk counts to try (0 = the engine's choice)")
      ("min-chunk", po::value<int64_t>()->default_value(0), "keys per split-KV chunk at least (the splits past the keys stay empty)")
      ("group", po::value<int>()->default_value(0), "GQA: query heads per block sharing K/V loads (1, 2, 4; 0 = 4)")
      ("prefetch", po::value<int>()->default_value(0),
       "the wide kernel loads a warp's next keys before using the current ones: 1, 0, -1 = when one head per block")
      ("tensor-cores", po::value<int>()->default_value(-1),
       "head_dim 64/128 on tensor cores: -1 = with several query heads per block and for KIVI 4/8 bits, 0 never, 1 always")
      ("kivi-stages", po::value<int>()->default_value(-1),
       "KIVI 4 bits on tensor cores: 0 = code tiles loaded into registers, 2 or 3 = a cp.async ring of that many "
       "tiles per warp in shared memory, -1 = the default")
      ("kivi-bits", po::value<std::string>()->default_value(""),
       "KIVI-quantized KV timed after the layouts, on each of them, e.g. 4,8 (2 takes the generic path)")
      ("kivi-group", po::value<int64_t>()->default_value(32), "KIVI: tokens per key group, channels per value group")
      ("kivi-residual", po::value<int64_t>()->default_value(128), "KIVI: newest tokens kept in bf16")
      ("rounds", po::value<int>()->default_value(10), "timings per point (median reported)")
      ("copy-mib", po::value<int64_t>()->default_value(2048), "buffer size of the copy-bandwidth measurement");
  po::variables_map vm;
  if (!parse_options("bench gpu-attention", "[options]", desc, args, vm)) return 0;
  const auto contexts = parse_size_list(vm["context"].as<std::string>(), "--context");
  const auto batches = parse_size_list(vm["batch"].as<std::string>(), "--batch");
  const auto block_sizes = parse_size_list(vm["block-size"].as<std::string>(), "--block-size");
  const auto splits = parse_size_list(vm["splits"].as<std::string>(), "--splits");
  const std::string kivi_text = vm["kivi-bits"].as<std::string>();
  const auto kivi_bits = kivi_text.empty() ? std::vector<int64_t>{} : parse_size_list(kivi_text, "--kivi-bits");
  for (int64_t b : kivi_bits)
    if (b != 2 && b != 4 && b != 8) fail("--kivi-bits ", b, " must be 2, 4 or 8");
  const double copy_bw = cuda::measure_copy_bandwidth(vm["copy-mib"].as<int64_t>() << 20, 20);
  cuda::GpuAttentionCase c;
  c.heads = vm["heads"].as<int64_t>(), c.kv_heads = vm["kv-heads"].as<int64_t>(), c.head_dim = vm["head-dim"].as<int64_t>();
  c.group_heads = vm["group"].as<int>();
  c.prefetch = vm["prefetch"].as<int>();
  c.tensor_cores = vm["tensor-cores"].as<int>();
  c.kivi_stages = vm["kivi-stages"].as<int>();
  if (c.kivi_stages != -1 && c.kivi_stages != 0 && c.kivi_stages != 2 && c.kivi_stages != 3)
    fail("--kivi-stages ", c.kivi_stages, " must be -1, 0, 2 or 3");
  if (c.tensor_cores < -1 || c.tensor_cores > 1) fail("--tensor-cores ", c.tensor_cores, " outside -1..1");
  if (c.group_heads < 0 || c.group_heads > 4) fail("--group ", c.group_heads, " outside 0..4");
  std::printf("decode attention, one query per head and sequence: heads %lld, kv heads %lld, head_dim %lld, bf16 K/V; "
              "copy bandwidth %.3f TB/s (read + write)\n\n",
              (long long)c.heads, (long long)c.kv_heads, (long long)c.head_dim, copy_bw / 1e12);
  if (!kivi_bits.empty())
    std::printf("KIVI rows: K+V MB = what the launch reads (codes, fp16 (min, scale) params, bf16 rest); group %lld, residual "
                "%lld; reserved MB = codes and params of every position and the bf16 ring of the newest\n\n",
                (long long)vm["kivi-group"].as<int64_t>(), (long long)vm["kivi-residual"].as<int64_t>());
  std::printf("| context | batch | KV layout | splits | K+V MB | reserved MB | waste | us | GB/s | ratio vs copy | time vs "
              "first layout |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t len : contexts)
    for (int64_t batch : batches)
      for (int64_t s : splits) {
        double first_us = 0;
        const auto row = [&](const std::string& layout) {
          c.length = len, c.splits = int(s), c.min_chunk = vm["min-chunk"].as<int64_t>();
          c.batch_lengths = batch > 1 ? mixed_lengths(len, batch) : std::vector<int64_t>{};
          const auto t = cuda::measure_decode_attention(c, vm["rounds"].as<int>());
          if (first_us == 0) first_us = t.us;
          char waste[32] = "-";  // KIVI: reads less than it holds by design (the bf16 ring's slack)
          if (!c.kivi.enabled()) std::snprintf(waste, sizeof waste, "%.3f", 1.0 - double(t.kv_bytes) / double(t.reserved_bytes));
          std::printf("| %lld | %lld | %s | %d | %.2f | %.2f | %s | %.2f | %.0f | %.3f | %.3f |\n", (long long)len,
                      (long long)batch, layout.c_str(), t.splits, t.kv_bytes / 1e6, t.reserved_bytes / 1e6,
                      waste, t.us, t.bytes_per_s / 1e9, t.bytes_per_s / copy_bw, t.us / first_us);
        };
        c.kivi = KvQuantConfig{};
        for (int64_t bs : block_sizes) {
          c.block_size = bs;
          row(bs == 0 ? "contiguous" : "paged " + std::to_string(bs));
        }
        for (int64_t bits : kivi_bits)
          for (int64_t bs : block_sizes) {  // paged: the bf16 ring in pool blocks (gpu_kv_cache.h)
            c.kivi.bits = int(bits), c.kivi.group = vm["kivi-group"].as<int64_t>();
            c.kivi.residual = vm["kivi-residual"].as<int64_t>();
            c.block_size = bs;
            row("kivi int" + std::to_string(bits) + (bs == 0 ? "" : " paged " + std::to_string(bs)));
          }
        c.block_size = 0;
      }
  return 0;
}

}  // namespace ctx::cli
