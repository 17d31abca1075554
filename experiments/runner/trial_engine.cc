#include "experiments/runner/trial_engine.h"

#include <algorithm>

#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/model/transformer.h"

namespace ctx::runner {

std::string plugin_name(const std::string& canonical_spec) {
  return canonical_spec.substr(0, canonical_spec.find_first_of("@:{"));
}

bool gpu_quant_plugin(const std::string& name) {
  for (const char* q : {"none", "int8", "llm_int8", "q8_0", "q4_0", "nf4", "fp4"})
    if (name == q) return true;
  return false;
}

namespace {

class CpuTrialEngine final : public TrialEngine {
 public:
  CpuTrialEngine(const Model& model, const TrialConfig& trial, const Catalog& catalog)
      : tf_(model, catalog.attention.create(trial.attention)), prefill_chunk_(trial.prefill_chunk) {
    tf_.set_kv_compressor(catalog.kv.create(trial.kv));
    tf_.set_kv_quantization(resolve_kv_quant(catalog, trial.kv_quant));
  }
  std::vector<LoglikResult> loglikelihood(const std::vector<LoglikRequest>& requests) override {
    return ctx::loglikelihood(tf_, requests, 4096, prefill_chunk_);
  }
  std::vector<GenerateResult> generate(const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& options,
                                       GenerateTimings* timings) override {
    GenerateOptions chunked = options;
    chunked.prefill_chunk = prefill_chunk_;
    return generate_greedy(tf_, prompts, chunked, timings);
  }

 private:
  Transformer tf_;
  int64_t prefill_chunk_;  // the trial's (0: one forward per prompt)
};

class GpuTrialEngine final : public TrialEngine {
 public:
  GpuTrialEngine(const Model& model, const cuda::GpuEngineOptions& options)
      : engine_(cuda::GpuEngine::create(model, options)),
        vocab_(model.config.vocab_size),
        max_batch_(options.max_batch),
        paged_(options.kv_block_size > 0),
        kivi_(options.kv_quant.enabled()) {}

  std::vector<LoglikResult> loglikelihood(const std::vector<LoglikRequest>& requests) override {
    std::vector<LoglikResult> results;
    for (size_t i = 0; i < requests.size(); ++i) {
      const LoglikRequest& r = requests[i];
      engine_->reset();
      const std::vector<float> logits = engine_->forward(loglik_input(r, i), true);
      results.push_back(score_continuation(logits.data() + int64_t(r.context.size() - 1) * vocab_, vocab_,
                                           r.continuation));
    }
    return results;
  }

  std::vector<GenerateResult> generate(const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& options,
                                       GenerateTimings* timings) override {
    cuda::GpuTimings tm;
    std::vector<std::vector<int32_t>> tokens;
    if (prompts.size() == 1) {
      tokens.push_back(engine_->generate_greedy(prompts[0], options.max_new_tokens, options.stop_ids, &tm));
    } else {
      tokens = engine_->generate_greedy_batch(prompts, options.max_new_tokens, options.stop_ids, &tm);
    }
    std::vector<GenerateResult> results(prompts.size());
    int64_t positions = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerateResult& r = results[i];
      r.tokens = std::move(tokens[i]);
      r.prompt_tokens = int64_t(prompts[i].size());
      r.stopped = !r.tokens.empty() &&
                  std::find(options.stop_ids.begin(), options.stop_ids.end(), r.tokens.back()) != options.stop_ids.end();
      positions += r.prompt_tokens + int64_t(r.tokens.size());
    }
    if (timings) {
      timings->prefill_seconds = tm.prefill_ms * 1e-3;
      timings->decode_seconds = tm.decode_ms * 1e-3;
      timings->decode_steps = tm.decode_steps;
      timings->kv_bytes_reserved = engine_->kv_cache_bytes();
      // Paged: the blocks the sequences hold (with KIVI: and the codes); KIVI: all it holds (codes
      // sized to the entries held, the bf16 ring whole); contiguous: the share of the slots'
      // positions they fill.
      timings->kv_bytes_used = paged_ ? engine_->kv_cache_bytes_in_use()
                               : kivi_ ? engine_->kv_cache_bytes()
                                       : engine_->kv_cache_bytes() * positions / (engine_->capacity() * max_batch_);
    }
    return results;
  }

  void reset_peak_device_memory() override { engine_->reset_peak_memory(); }
  int64_t peak_device_bytes() const override { return engine_->memory().peak_bytes; }
  int64_t capacity() const override { return engine_->capacity(); }

 private:
  std::unique_ptr<cuda::GpuEngine> engine_;
  int64_t vocab_, max_batch_;
  bool paged_, kivi_;
};

}  // namespace

std::unique_ptr<TrialEngine> make_cpu_trial_engine(const Model& model, const TrialConfig& trial,
                                                   const Catalog& catalog) {
  if (trial.dtype != "float32") throw Unsupported(str_cat("dtype ", trial.dtype, ": the CPU engine computes in float32"));
  return std::make_unique<CpuTrialEngine>(model, trial, catalog);
}

void set_gpu_attention(const Catalog& catalog, const std::string& spec, cuda::GpuEngineOptions& options) {
  const PluginSpec resolved = catalog.attention.resolve(spec);
  const std::string& attention = resolved.name;
  // sdpa and flash: the same GPU kernels (tensor-core flash prefill, split-KV decode), as PyTorch's
  // SDPA dispatches to its flash kernel; paged: those over a paged KV pool.
  if (attention != "sdpa" && attention != "flash" && attention != "paged" && attention != "flex" && attention != "eager")
    throw Unsupported(str_cat("attention ", spec, " on device cuda: only eager, sdpa, flash, flex and paged run on the GPU"));
  if (attention == "paged") {
    const int64_t block_size = catalog.attention.create(resolved)->block_size();
    if (block_size > 1024 || (block_size & (block_size - 1)) != 0)
      throw Unsupported(str_cat("attention ", spec, " on device cuda: block_size must be a power of two <= 1024"));
    options.kv_block_size = block_size;
  }
  // eager: materialised scores (gpu_eager_attention.h), float32 like the CPU's default precision.
  if (attention == "eager") {
    if (resolved.params.get_string("precision") != "float")
      throw Unsupported(str_cat("attention ", spec, " on device cuda: the GPU's eager computes its scores in float32 "
                                                    "(precision=float)"));
    options.eager_attention = true;
  }
  // flex: its mask and score mod on the same kernels.
  if (attention == "flex") {
    const auto backend = catalog.attention.create(resolved);
    options.flex_mask = backend->gpu_flex_mask();
    options.score_mod = backend->gpu_score_mod();
  }
}

std::unique_ptr<TrialEngine> make_gpu_trial_engine(const Model& model, const TrialConfig& trial, int64_t capacity,
                                                   const Catalog& catalog) {
  if (trial.dtype != "bfloat16")
    throw Unsupported(str_cat("dtype ", trial.dtype, " on device cuda: the GPU engine computes in bfloat16 (set dtype = bfloat16)"));
  cuda::GpuEngineOptions options;
  set_gpu_attention(catalog, trial.attention, options);
  // The weights arrive quantized by the trial's plugin; the engine uploads them packed.
  if (const std::string q = plugin_name(trial.quant); !gpu_quant_plugin(q))
    throw Unsupported(str_cat("quant ", trial.quant, " on device cuda: no GPU kernel for ", q,
                              "; the GPU runs none, int8, llm_int8, q8_0, q4_0, nf4 and fp4"));
  // KIVI KV: the engine says what it cannot combine it with (sliding windows, flex masks,
  // compressors that score decode steps by attention).
  options.kv_quant = resolve_kv_quant(catalog, trial.kv_quant);
  options.kv = cuda::gpu_kv_policy(catalog.kv.resolve(trial.kv));  // Unsupported for kv plugins the GPU lacks
  options.capacity = capacity;
  options.memory_limit_bytes = trial.memory_limit_mb * (int64_t(1) << 20);
  options.max_batch = std::max<int64_t>(1, trial.batch_size);
  // A batched decode step is one forward of max_batch rows: the GPU engine's chunk holds at least those.
  if (trial.prefill_chunk > 0 && trial.prefill_chunk < options.max_batch)
    throw Unsupported(str_cat("prefill_chunk ", trial.prefill_chunk, " below batch_size ", options.max_batch,
                              " on device cuda: the GPU engine's forwards hold a batched decode step's rows"));
  if (trial.prefill_chunk > 0) options.prefill_chunk = trial.prefill_chunk;
  options.prefill_chunk = std::max(options.prefill_chunk, options.max_batch);
  return std::make_unique<GpuTrialEngine>(model, options);
}

}  // namespace ctx::runner
