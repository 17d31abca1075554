// gpu_engine.h in a build without CUDA: every entry point says so.
#include "core/cuda/gpu_attention.h"
#include "core/cuda/gpu_engine.h"
#include "core/cuda/gpu_kv_compress.h"
#include "core/cuda/gpu_quant_gemv.h"
#include "core/cuda/kernel_trace.h"

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

KiviPrefix gpu_kivi_quantize(const GpuAttentionCase&, std::span<const float>, std::span<const float>) {
  throw Unsupported("gpu_attention: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

AttentionTiming measure_decode_attention(const GpuAttentionCase&, int) {
  throw Unsupported("gpu_attention: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

PrefillTiming measure_prefill_attention(const GpuAttentionCase&, int, int) {
  throw Unsupported("gpu_attention: this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)");
}

namespace {
[[noreturn]] void no_cuda(const char* who) {
  throw Unsupported(str_cat(who, ": this ctxlab was built without CUDA (configure with -DCTXLAB_CUDA=ON)"));
}
}  // namespace

std::vector<float> gpu_gemv(const std::vector<const WeightMatrix*>&, const GpuGemvCase&) { no_cuda("gpu_gemv"); }
std::vector<int32_t> gpu_argmax_rows(std::span<const float>, int64_t) { no_cuda("gpu_argmax_rows"); }

std::vector<float> gpu_gemm(const std::vector<const WeightMatrix*>&, std::span<const float>, int64_t, int64_t) {
  no_cuda("gpu_gemm");
}

std::vector<float> gpu_dequantize(const std::vector<const WeightMatrix*>&, int64_t, int64_t) { no_cuda("gpu_dequantize"); }

GemvTiming measure_gemv(const WeightMatrix&, int) { no_cuda("measure_gemv"); }

GpuLayerGemvsResult gpu_layer_gemvs(const GpuLayerGemvs&, bool, int, int) { no_cuda("gpu_layer_gemvs"); }

LayerGemvsTiming measure_layer_gemvs(const GpuLayerGemvs&, int, int) { no_cuda("measure_layer_gemvs"); }

GpuKvCompressResult gpu_kv_compress(const GpuKvCompressCase&, std::span<const float>, std::span<const float>,
                                    std::span<const float>) {
  no_cuda("gpu_kv_compress");
}

GpuKvCompressResult gpu_kv_keep_all_but_one(const GpuKvEvictCase&, std::span<const float>, std::span<const float>,
                                            std::span<const float>) {
  no_cuda("gpu_kv_keep_all_but_one");
}

std::vector<float> gpu_kv_attention_votes(const GpuKvVotesCase&, std::span<const float>, std::span<const float>) {
  no_cuda("gpu_kv_attention_votes");
}

void start_kernel_trace() { no_cuda("kernel trace"); }

std::vector<KernelRecord> stop_kernel_trace() { no_cuda("kernel trace"); }

}  // namespace ctx::cuda
