// gpu_engine.h in a build without CUDA: every entry point says so.
#include "core/cuda/gpu_attention.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_kv_compress.h"

namespace ctx::cuda {

std::unique_ptr<GpuEngine> GpuEngine::create(const Model&, const GpuEngineOptions&) {
  throw Unsupported("GPU engine: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

double measure_copy_bandwidth(int64_t, int) {
  throw Unsupported("GPU engine: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

double measure_gemv_bandwidth(int64_t, int64_t, int) {
  throw Unsupported("GPU engine: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

std::vector<float> gpu_attention(const GpuAttentionCase&, std::span<const float>, std::span<const float>,
                                 std::span<const float>) {
  throw Unsupported("gpu_attention: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

AttentionTiming measure_decode_attention(const GpuAttentionCase&, int) {
  throw Unsupported("gpu_attention: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

PrefillTiming measure_prefill_attention(const GpuAttentionCase&, int, int) {
  throw Unsupported("gpu_attention: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

GpuKvCompressResult gpu_kv_compress(const GpuKvCompressCase&, std::span<const float>, std::span<const float>) {
  throw Unsupported("gpu_kv_compress: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

}  // namespace ctx::cuda
