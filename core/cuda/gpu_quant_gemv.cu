#include "core/cuda/gpu_quant_gemv.h"

#include <algorithm>
#include <array>

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
  return gpu_gemv_result(parts, c).y;
}

GpuGemvResult gpu_gemv_result(const std::vector<const WeightMatrix*>& parts, const GpuGemvCase& c) {
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
  if (!c.sumsq.empty() && c.norm_weight.empty()) fail("gpu_gemv: sumsq without norm_weight");
  if (c.want_sumsq && (n > 1 || c.swiglu || !c.norm_weight.empty()))
    fail("gpu_gemv: want_sumsq needs one row, a plain GEMV and no norm_weight");
  DeviceBuffer<bf16> x, norm, bias;
  DeviceBuffer<float> hidden, parts_in, parts_out;
  GemvInput in;
  GpuGemvResult result;
  if (!c.norm_weight.empty()) {
    hidden = upload_f32(alloc, c.x.data(), cols);
    norm = upload_bf16(alloc, c.norm_weight.data(), cols);
    in = GemvInput{nullptr, hidden.get(), norm.get(), c.eps};
    if (!c.sumsq.empty()) {
      parts_in = upload_f32(alloc, c.sumsq.data(), int64_t(c.sumsq.size()));
      in.sumsq = parts_in.get(), in.sumsq_parts = int64_t(c.sumsq.size());
      result.direct_norm = w.quant_view() && quant_gemv_direct_norm(*w.quant_view(), in);
    }
  } else {
    x = upload_bf16(alloc, c.x.data(), n * cols);
    in = GemvInput{x.get()};
  }
  if (!c.bias.empty()) bias = upload_bf16(alloc, c.bias.data(), rows);
  const bf16* b = c.bias.empty() ? nullptr : bias.get();
  if (c.swiglu) {
    DeviceBuffer<bf16> act(alloc, n * out_rows);
    n > 1 ? w.gemv_swiglu_rows(x.get(), n, b, act.get(), nullptr) : w.gemv_swiglu(in, b, act.get(), nullptr);
    CTX_CUDA_CHECK(cudaDeviceSynchronize());
    result.y = bf16_to_float(download(act));
  } else {
    DeviceBuffer<float> y(alloc, n * rows);
    if (!c.y0.empty()) CTX_CUDA_CHECK(cudaMemcpy(y.get(), c.y0.data(), size_t(n * rows) * 4, cudaMemcpyHostToDevice));
    if (c.want_sumsq && w.sumsq_parts() > 0) parts_out = DeviceBuffer<float>(alloc, w.sumsq_parts());
    int64_t written = 0;
    if (n > 1) {
      w.gemv_rows(x.get(), n, b, c.alpha, !c.y0.empty(), y.get(), nullptr);
    } else {
      written = w.gemv(in, b, c.alpha, !c.y0.empty(), y.get(), nullptr, c.stage_input, parts_out.get());
    }
    CTX_CUDA_CHECK(cudaDeviceSynchronize());
    result.y = download(y);
    if (written > 0) {
      result.sumsq = download(parts_out);
      result.sumsq.resize(size_t(written));
    }
  }
  return result;
}

std::vector<int32_t> gpu_argmax_rows(std::span<const float> logits, int64_t rows) {
  require_cuda_device("gpu_argmax_rows");
  if (rows < 1 || logits.empty() || int64_t(logits.size()) % rows != 0)
    fail("gpu_argmax_rows: ", logits.size(), " logits are not ", rows, " rows");
  const int64_t vocab = int64_t(logits.size()) / rows;
  DeviceAllocator alloc;
  DeviceBuffer<float> d(alloc, int64_t(logits.size()));
  CTX_CUDA_CHECK(cudaMemcpy(d.get(), logits.data(), logits.size() * 4, cudaMemcpyHostToDevice));
  DeviceBuffer<int32_t> tokens(alloc, rows);
  launch_argmax_rows(d.get(), rows, vocab, tokens.get(), nullptr, nullptr, nullptr);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  return download(tokens);
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

namespace {

// One copy of a GpuLayerGemvs' matrices on the device, and the buffers the four GEMVs read and write.
struct LayerMatrices {
  LinearWeights o, gate_up, down, qkv;
};
struct LayerIo {
  DeviceBuffer<bf16> x, ffn_norm, attn_norm, act;
  DeviceBuffer<float> hidden, qkv;
  DeviceBuffer<unsigned> barrier;
  DeviceBuffer<float> sumsq;  // hidden's sums of squares (norm_partials)
};

LayerMatrices upload_layer(DeviceAllocator& alloc, const GpuLayerGemvs& c) {
  LayerMatrices m{LinearWeights::upload(alloc, c.o, "o_proj"), LinearWeights::upload(alloc, c.gate_up, "gate_up"),
                  LinearWeights::upload(alloc, c.down, "down_proj"), LinearWeights::upload(alloc, c.qkv, "qkv")};
  const int64_t d = m.o.rows();
  if (!m.o.quant_view() || !m.gate_up.quant_view() || !m.down.quant_view() || !m.qkv.quant_view())
    fail("gpu_layer_gemvs: every matrix must be quantized");
  if (m.gate_up.cols() != d || m.down.rows() != d || m.qkv.cols() != d || m.down.cols() * 2 != m.gate_up.rows())
    fail("gpu_layer_gemvs: shapes o [", d, ", ", m.o.cols(), "], gate_up [", m.gate_up.rows(), ", ", m.gate_up.cols(),
         "], down [", m.down.rows(), ", ", m.down.cols(), "], qkv [", m.qkv.rows(), ", ", m.qkv.cols(), "] do not chain");
  return m;
}

LayerIo make_io(DeviceAllocator& alloc, const GpuLayerGemvs& c, const LayerMatrices& m) {
  const int64_t d = m.o.rows();
  check_span(c.x, m.o.cols(), "x");
  check_span(c.hidden, d, "hidden");
  check_span(c.ffn_norm, d, "ffn_norm");
  check_span(c.attn_norm, d, "attn_norm");
  if (c.x.empty() || c.hidden.empty() || c.ffn_norm.empty() || c.attn_norm.empty())
    fail("gpu_layer_gemvs: x, hidden and both norms are needed");
  LayerIo io{upload_bf16(alloc, c.x.data(), m.o.cols()),
             upload_bf16(alloc, c.ffn_norm.data(), d),
             upload_bf16(alloc, c.attn_norm.data(), d),
             DeviceBuffer<bf16>(alloc, m.down.cols()),
             upload_f32(alloc, c.hidden.data(), d),
             DeviceBuffer<float>(alloc, m.qkv.rows()),
             DeviceBuffer<unsigned>(alloc, 2),
             DeviceBuffer<float>(alloc, std::max(m.o.sumsq_parts(), m.down.sumsq_parts()))};
  CTX_CUDA_CHECK(cudaMemset(io.barrier.get(), 0, 8));
  return io;
}

// The four GEMVs as the chain's stages.
std::array<QuantGemvStage, 4> layer_stages(const LayerMatrices& m, const LayerIo& io, const GpuLayerGemvs& c) {
  const GemvInput ffn{nullptr, io.hidden.get(), io.ffn_norm.get(), c.eps}, attn{nullptr, io.hidden.get(), io.attn_norm.get(), c.eps};
  return {QuantGemvStage{*m.o.quant_view(), GemvInput{io.x.get()}, nullptr, c.alpha, true, io.hidden.get(), nullptr},
          QuantGemvStage{*m.gate_up.quant_view(), ffn, nullptr, 1.f, false, nullptr, io.act.get()},
          QuantGemvStage{*m.down.quant_view(), GemvInput{io.act.get()}, nullptr, c.alpha, true, io.hidden.get(), nullptr},
          QuantGemvStage{*m.qkv.quant_view(), attn, nullptr, 1.f, false, io.qkv.get(), nullptr}};
}

// ring_kib < 0: four launches (with norm_partials: o_proj and down_proj leave hidden's sums of squares
// for the next GEMV); else the chain with that ring (0: its default), or with `single` each stage a
// chain of its own (four launches of the chain kernel, no barrier).
void enqueue_layer(const LayerMatrices& m, const LayerIo& io, const GpuLayerGemvs& c, int ring_kib, cudaStream_t s,
                   bool single = false, int barrier_kind = 0, bool norm_partials = false) {
  const auto st = layer_stages(m, io, c);
  if (ring_kib >= 0 && single) {
    for (const QuantGemvStage& one : st) launch_quant_gemv_chain(&one, 1, io.barrier.get(), s, ring_kib);
    return;
  }
  if (ring_kib >= 0) return launch_quant_gemv_chain(st.data(), 4, io.barrier.get(), s, ring_kib, barrier_kind);
  float* const sumsq = norm_partials ? io.sumsq.get() : nullptr;
  // The sums of squares the last GEMV into hidden left, for the next one that normalizes it.
  const auto with_sumsq = [&](GemvInput in, int64_t parts) {
    if (parts > 0) in.sumsq = sumsq, in.sumsq_parts = parts;
    return in;
  };
  const int64_t after_o = m.o.gemv(st[0].in, nullptr, c.alpha, true, io.hidden.get(), s, false, sumsq);
  m.gate_up.gemv_swiglu(with_sumsq(st[1].in, after_o), nullptr, io.act.get(), s);
  const int64_t after_down = m.down.gemv(st[2].in, nullptr, c.alpha, true, io.hidden.get(), s, false, sumsq);
  m.qkv.gemv(with_sumsq(st[3].in, after_down), nullptr, 1.f, false, io.qkv.get(), s);
}

void check_chainable(const LayerMatrices& m, const LayerIo& io, const GpuLayerGemvs& c) {
  if (!quant_gemv_chain_supported(layer_stages(m, io, c).data(), 4)) fail("gpu_layer_gemvs: these matrices cannot be chained");
}

}  // namespace

GpuLayerGemvsResult gpu_layer_gemvs(const GpuLayerGemvs& c, bool chained, int ring_kib, int barrier_kind) {
  require_cuda_device("gpu_layer_gemvs");
  DeviceAllocator alloc;
  const LayerMatrices m = upload_layer(alloc, c);
  const LayerIo io = make_io(alloc, c, m);
  if (chained) check_chainable(m, io, c);
  enqueue_layer(m, io, c, chained ? ring_kib : -1, nullptr, false, barrier_kind);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  return GpuLayerGemvsResult{download(io.hidden), bf16_to_float(download(io.act)), download(io.qkv)};
}

LayerGemvsTiming measure_layer_gemvs(const GpuLayerGemvs& c, int layers, int reps) {
  require_cuda_device("measure_layer_gemvs");
  DeviceAllocator alloc;
  const LayerMatrices copies[2] = {upload_layer(alloc, c), upload_layer(alloc, c)};
  const LayerMatrices& m = copies[0];
  const LayerIo io = make_io(alloc, c, m);
  check_chainable(m, io, c);
  LayerGemvsTiming t;
  t.bytes = m.o.bytes() + m.gate_up.bytes() + m.down.bytes() + m.qkv.bytes() + 2 * (m.o.cols() + m.down.cols()) +
            8 * m.o.rows();  // x and act (bf16), hidden read twice (float)
  cudaStream_t stream = nullptr;
  CTX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto time = [&](int ring_kib, bool single = false, int barrier_kind = 1, bool partials = false) {
    CTX_CUDA_CHECK(cudaMemset(io.barrier.get(), 0, 8));  // the kinds use the words differently
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    CTX_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int l = 0; l < layers; ++l) enqueue_layer(copies[l % 2], io, c, ring_kib, stream, single, barrier_kind, partials);
    CTX_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    CTX_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CTX_CUDA_CHECK(cudaGraphDestroy(graph));
    const double ms = median_ms(reps, [&] { CTX_CUDA_CHECK(cudaGraphLaunch(exec, nullptr)); });
    CTX_CUDA_CHECK(cudaGraphExecDestroy(exec));
    return ms * 1e3 / layers;
  };
  t.separate_us = time(-1);
  t.chain_us[0] = time(48);
  t.chain_us[1] = time(96);
  t.chain_us[2] = time(144);
  t.single_stage_us = time(48, true);
  t.counting_us = time(48, false, 2);
  t.partials_us = time(-1, false, 1, true);
  CTX_CUDA_CHECK(cudaStreamDestroy(stream));
  return t;
}

}  // namespace ctx::cuda
