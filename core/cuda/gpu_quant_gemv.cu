#include "core/cuda/gpu_quant_gemv.h"

#include <algorithm>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_allocator.h"
#include "core/cuda/event_timer.h"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/quant_kernels.h"
#include "core/cuda/linear_weights.h"

namespace ctx::cuda {

namespace {

template <class T>
std::vector<T> download(const DeviceBuffer<T>& d) {
  std::vector<T> h(static_cast<size_t>(d.size()));
  CTX_CUDA_CHECK(cudaMemcpy(h.data(), d.get(), h.size() * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

std::vector<float> bf16_to_float(const std::vector<bf16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_to_f32(reinterpret_cast<const uint16_t*>(v.data())[i]);
  return out;
}

void check_span(std::span<const float> s, int64_t expected, const char* what) {
  if (!s.empty() && int64_t(s.size()) != expected) fail("gpu_gemv: ", what, " has ", s.size(), " values, expected ", expected);
}

}  // namespace

std::vector<float> gpu_gemv(const std::vector<const WeightMatrix*>& parts, const GpuGemvCase& c) {
  require_cuda_device("gpu_gemv");
  DeviceAllocator alloc;
  const LinearWeights w = LinearWeights::upload(alloc, parts, "gpu_gemv matrix");
  const int64_t rows = w.rows(), cols = w.cols(), out_rows = c.swiglu ? rows / 2 : rows, n = c.n;
  if (n < 1 || int64_t(c.x.size()) != n * cols)
    fail("gpu_gemv: x has ", c.x.size(), " values for ", n, " rows of ", cols, " columns");
  if (n > 1 && (!c.norm_weight.empty() || !w.rows_supported(n)))
    fail("gpu_gemv: ", n, " input rows need quantized weights the batched GEMV takes and no norm_weight");
  if (c.swiglu && rows % 2 != 0) fail("gpu_gemv: swiglu needs an even number of rows, not ", rows);
  check_span(c.norm_weight, cols, "norm_weight");
  check_span(c.bias, rows, "bias");
  check_span(c.y0, n * out_rows, "y0");
  if (c.swiglu && !c.y0.empty()) fail("gpu_gemv: swiglu takes no y0");
  DeviceBuffer<bf16> x, norm, bias;
  DeviceBuffer<float> hidden;
  GemvInput in;
  if (!c.norm_weight.empty()) {
    hidden = upload_f32(alloc, c.x.data(), cols);
    norm = upload_bf16(alloc, c.norm_weight.data(), cols);
    in = GemvInput{nullptr, hidden.get(), norm.get(), c.eps};
  } else {
    x = upload_bf16(alloc, c.x.data(), n * cols);
    in = GemvInput{x.get()};
  }
  if (!c.bias.empty()) bias = upload_bf16(alloc, c.bias.data(), rows);
  const bf16* b = c.bias.empty() ? nullptr : bias.get();
  std::vector<float> result;
  if (c.swiglu) {
    DeviceBuffer<bf16> act(alloc, n * out_rows);
    n > 1 ? w.gemv_swiglu_rows(x.get(), n, b, act.get(), nullptr) : w.gemv_swiglu(in, b, act.get(), nullptr);
    CTX_CUDA_CHECK(cudaDeviceSynchronize());
    result = bf16_to_float(download(act));
  } else {
    DeviceBuffer<float> y(alloc, n * rows);
    if (!c.y0.empty()) CTX_CUDA_CHECK(cudaMemcpy(y.get(), c.y0.data(), size_t(n * rows) * 4, cudaMemcpyHostToDevice));
    if (n > 1) {
      w.gemv_rows(x.get(), n, b, c.alpha, !c.y0.empty(), y.get(), nullptr);
    } else {
      w.gemv(in, b, c.alpha, !c.y0.empty(), y.get(), nullptr, c.stage_input);
    }
    CTX_CUDA_CHECK(cudaDeviceSynchronize());
    result = download(y);
  }
  return result;
}

std::vector<float> gpu_gemm(const std::vector<const WeightMatrix*>& parts, std::span<const float> x, int64_t n,
                            int64_t scratch_elems) {
  require_cuda_device("gpu_gemm");
  DeviceAllocator alloc;
  const LinearWeights w = LinearWeights::upload(alloc, parts, "gpu_gemm matrix");
  if (n < 1 || int64_t(x.size()) != n * w.cols()) fail("gpu_gemm: x has ", x.size(), " values, not ", n, " rows of ", w.cols());
  const DeviceBuffer<bf16> xd = upload_bf16(alloc, x.data(), n * w.cols());
  DeviceBuffer<bf16> tiles(alloc, std::max<int64_t>(scratch_elems, 1));
  GemmScratch scratch;
  scratch.tiles = tiles.get(), scratch.tile_elems = scratch_elems;
  DeviceBuffer<bf16> inputs;
  DeviceBuffer<uint8_t> columns;
  if (w.int8_activations()) {
    inputs = DeviceBuffer<bf16>(alloc, n * w.cols()), columns = DeviceBuffer<uint8_t>(alloc, w.cols());
    scratch.inputs = inputs.get(), scratch.input_elems = inputs.size();
    scratch.columns = columns.get(), scratch.column_count = columns.size();
  }
  DeviceBuffer<float> out(alloc, n * w.rows());
  cublasHandle_t blas = nullptr;
  CTX_CUBLAS_CHECK(cublas().create(&blas));
  CTX_CUBLAS_CHECK(cublas().set_stream(blas, nullptr));
  try {
    w.gemm(blas, xd.get(), n, out.get(), scratch, nullptr);
    CTX_CUDA_CHECK(cudaDeviceSynchronize());
  } catch (...) {
    cublas().destroy(blas);
    throw;
  }
  cublas().destroy(blas);
  return download(out);
}

std::vector<float> gpu_dequantize(const std::vector<const WeightMatrix*>& parts, int64_t r0, int64_t r1) {
  require_cuda_device("gpu_dequantize");
  std::vector<const QuantizedMatrix*> q;
  for (const WeightMatrix* m : parts) {
    if (!m->quant) fail("gpu_dequantize: the matrices must be quantized");
    q.push_back(m->quant.get());
  }
  DeviceAllocator alloc;
  const GpuQuantMatrix m(alloc, q, "gpu_dequantize matrix");
  if (r0 < 0 || r0 >= r1 || r1 > m.view().rows) fail("gpu_dequantize: rows [", r0, ", ", r1, ") of ", m.view().rows);
  DeviceBuffer<bf16> out(alloc, (r1 - r0) * m.view().cols);
  launch_dequantize(m.view(), r0, r1, out.get(), nullptr);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  return bf16_to_float(download(out));
}

GemvTiming measure_gemv(const WeightMatrix& m, int reps) {
  require_cuda_device("measure_gemv");
  DeviceAllocator alloc;
  std::vector<LinearWeights> copies;
  copies.push_back(LinearWeights::upload(alloc, {&m}, "measure_gemv matrix"));
  const int64_t count = copies_beyond_l2(copies[0].bytes(), 2);
  while (int64_t(copies.size()) < count) copies.push_back(LinearWeights::upload(alloc, {&m}, "measure_gemv matrix"));
  DeviceBuffer<bf16> x(alloc, m.cols);
  launch_fill_random(x.get(), m.cols, 99, nullptr);
  DeviceBuffer<float> y(alloc, m.rows);
  constexpr int kLaunches = 20;
  int64_t next = 0;
  const double ms = median_ms(reps, [&] {
    for (int i = 0; i < kLaunches; ++i)
      copies[size_t(next++ % count)].gemv(GemvInput{x.get()}, nullptr, 1.f, false, y.get(), nullptr);
  });
  GemvTiming t;
  t.bytes = copies[0].bytes() + m.cols * 2;
  t.us = ms * 1e3 / kLaunches;
  t.bytes_per_s = double(t.bytes) / (t.us * 1e-6);
  return t;
}

}  // namespace ctx::cuda
