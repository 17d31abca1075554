// What the GPU engine's test programs (tests/gpu) share: whether this machine runs the GPU engine (the
// tests skip where it does not), and the GPU KV policy of a kv plugin spec.
#pragma once

#include <string>

#include "core/base/error.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/model/model_loader.h"
#include "plugins/register_all.h"
#include "tests/support/test_paths.h"

namespace ctx::cuda::gpu_test {

// Whether GpuEngine::create succeeds for `model` (false where it throws ctx::Unsupported: no CUDA device).
inline bool have_gpu(const Model& model) {
  try {
    GpuEngine::create(model, {});
    return true;
  } catch (const Unsupported&) {
    return false;
  }
}

// The same for the llama fixture (../shared/fixtures/hf/llama).
inline bool have_gpu() { return have_gpu(*load_model(test::shared_path("fixtures/hf/llama"))); }

// The GPU engine's policy of a kv plugin spec as the runner resolves it.
inline GpuKvPolicy policy_of(const std::string& spec) { return gpu_kv_policy(builtin_catalog().kv.resolve(spec)); }

}  // namespace ctx::cuda::gpu_test
