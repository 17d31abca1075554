// The engine a trial's examples run on (trial_runner.cc), chosen by the trial's device:
//   cpu:  the float32 Transformer with the trial's attention backend, KV compressor and KV
//         quantization plugins (weights as quantized by the trial's quant plugin);
//   cuda: the CUDA engine (core/cuda/gpu_engine.h): bf16, batches of trial.batch_size sequences
//         decoded together, attention as set_gpu_attention() maps it, weights as quantized by the trial's quant plugin when it is one of
//         gpu_quant_plugin() (uploaded in the plugin's packed form), no KV plugins yet. Anything else
//         is ctx::Unsupported with the reason, so such a trial ends with status unsupported, not a
//         wrong number. Device memory beyond the trial's memory_limit_mb (when set) is
//         CudaOutOfMemory, as on a smaller card.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/model/generate.h"
#include "core/model/model_loader.h"
#include "core/plugin/catalog.h"
#include "experiments/runner/experiment_config.h"

namespace ctx::cuda {
struct GpuEngineOptions;
}

namespace ctx::runner {

class TrialEngine {
 public:
  virtual ~TrialEngine() = default;
  virtual std::vector<LoglikResult> loglikelihood(const std::vector<LoglikRequest>& requests) = 0;
  virtual std::vector<GenerateResult> generate(const std::vector<std::vector<int32_t>>& prompts,
                                               const GenerateOptions& options, GenerateTimings* timings) = 0;
  // Device memory of a measured batch: reset before it, read after it (0 on the CPU).
  virtual void reset_peak_device_memory() {}
  virtual int64_t peak_device_bytes() const { return 0; }
  // Positions the engine's KV cache holds per sequence (GPU: fixed at creation; CPU: unbounded).
  virtual int64_t capacity() const { return INT64_MAX; }
};

std::unique_ptr<TrialEngine> make_cpu_trial_engine(const Model& model, const TrialConfig& trial,
                                                   const Catalog& catalog);

// `capacity`: the longest prompt plus max_new_tokens. Throws Unsupported (see above; also in a build
// without CUDA) or CudaOutOfMemory.
std::unique_ptr<TrialEngine> make_gpu_trial_engine(const Model& model, const TrialConfig& trial, int64_t capacity,
                                                   const Catalog& catalog);

// The GPU engine's options for an attention spec: `sdpa` or `flash` (the same kernels: tensor-core
// flash prefill, split-KV decode; contiguous KV), `paged` (its block_size, a power of two <= 1024:
// paged KV on the device), `flex` (its mask and score mod on those kernels), `eager` (precision
// float: materialised scores, GpuEngineOptions::eager_attention). Anything else is ctx::Unsupported
// with the reason; the engine refuses what these options cannot be combined with.
void set_gpu_attention(const Catalog& catalog, const std::string& spec, cuda::GpuEngineOptions& options);

// The plugin name of a canonical spec ("sdpa@1{}" -> "sdpa").
std::string plugin_name(const std::string& canonical_spec);

// Whether the GPU engine runs weights quantized by this quant plugin (none, int8, llm_int8, q8_0, q4_0,
// nf4, fp4).
bool gpu_quant_plugin(const std::string& name);

}  // namespace ctx::runner
