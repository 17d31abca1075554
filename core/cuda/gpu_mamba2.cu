#include "core/cuda/gpu_mamba2.h"

#include <algorithm>

#include "core/base/dtype.h"
#include "core/base/error.h"
#include "core/cuda/cuda_check.h"

namespace ctx::cuda {

namespace {

// The weight vector `v` of `size` floats, or a clear error naming it.
const float* checked(const WeightVector& v, int64_t size, const char* what) {
  if (v.empty() || v.size != size) fail("Mamba-2 weights: ", what, " has ", v.size, " values, expected ", size);
  return v.data;
}

}  // namespace

int64_t mamba2_conv_state_floats(const Mamba2Config& c) { return c.conv_dim() * (c.conv_kernel - 1); }
int64_t mamba2_state_floats(const Mamba2Config& c) {
  return mamba2_conv_state_floats(c) + c.num_heads * c.head_dim * c.state_size;
}

GpuMamba2Workspace::GpuMamba2Workspace(DeviceAllocator& alloc, const Mamba2Config& c, int64_t max)
    : max_tokens(max),
      proj(alloc, max * c.in_proj_dim()),
      xbc(alloc, max * c.conv_dim()),
      y(alloc, max * c.intermediate()),
      chunk_states(alloc, (max + c.chunk_size - 1) / c.chunk_size * c.num_heads * c.head_dim * c.state_size),
      chunk_sum(alloc, (max + c.chunk_size - 1) / c.chunk_size * c.num_heads),
      out(alloc, max * c.intermediate()) {
  CTX_CHECK(max >= 1 && c.chunk_size >= 1);
}

GpuMamba2Layer::GpuMamba2Layer(DeviceAllocator& alloc, const Mamba2Config& c, float norm_eps, const Mamba2Weights& w) {
  Mamba2Params& p = params_;
  p.heads = c.num_heads, p.head_dim = c.head_dim, p.state = c.state_size, p.groups = c.num_groups;
  p.conv_kernel = c.conv_kernel, p.chunk = c.chunk_size;
  p.dt_min = float(c.dt_min), p.dt_max = float(c.dt_max), p.eps = norm_eps;
  if (const std::string why = mamba2_unsupported_reason(p); !why.empty()) throw Unsupported("GPU engine: " + why);
  const int64_t heads = c.num_heads;
  conv_w_ = upload_bf16(alloc, checked(w.conv_weight, c.conv_dim() * c.conv_kernel, "conv1d.weight"),
                        c.conv_dim() * c.conv_kernel);
  if (c.conv_bias) conv_b_ = upload_bf16(alloc, checked(w.conv_bias, c.conv_dim(), "conv1d.bias"), c.conv_dim());
  norm_w_ = upload_bf16(alloc, checked(w.norm, c.intermediate(), "norm.weight"), c.intermediate());
  dt_bias_ = upload_f32(alloc, checked(w.dt_bias, heads, "dt_bias"), heads);
  a_log_ = upload_f32(alloc, checked(w.a_log, heads, "A_log"), heads);
  d_ = upload_f32(alloc, checked(w.d, heads, "D"), heads);
  weight_bytes_ = conv_w_.bytes() + conv_b_.bytes() + norm_w_.bytes() + dt_bias_.bytes() + a_log_.bytes() + d_.bytes();
  p.conv_w = conv_w_.get(), p.conv_b = conv_b_.size() ? conv_b_.get() : nullptr, p.norm_w = norm_w_.get();
  p.dt_bias = dt_bias_.get(), p.a_log = a_log_.get(), p.d = d_.get();
}

void GpuMamba2Layer::mix(GpuMamba2Workspace& ws, int64_t n, float* state, cudaStream_t stream) const {
  CTX_CHECK(n >= 1 && n <= ws.max_tokens, "Mamba-2 mix: ", n, " tokens, workspace for ", ws.max_tokens);
  Mamba2Params p = params_;
  p.conv_state = state, p.ssm_state = state + p.conv_dim() * (p.conv_kernel - 1);
  p.proj = ws.proj.get(), p.xbc = ws.xbc.get(), p.y = ws.y.get();
  p.chunk_states = ws.chunk_states.get(), p.chunk_sum = ws.chunk_sum.get(), p.out = ws.out.get();
  launch_mamba2_mixer(p, n, stream);
}

GpuMamba2Mixer::GpuMamba2Mixer(const Mamba2Config& c, float norm_eps, const Mamba2Weights& w, int64_t max_tokens)
    : config_(c) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw Unsupported("GpuMamba2Mixer: no CUDA device is available");
  }
  layer_ = std::make_unique<GpuMamba2Layer>(alloc_, c, norm_eps, w);
  ws_ = GpuMamba2Workspace(alloc_, c, max_tokens);
  state_ = DeviceBuffer<float>(alloc_, mamba2_state_floats(c));
  CTX_CUDA_CHECK(cudaMemset(state_.get(), 0, size_t(state_.bytes())));
}

GpuMamba2Mixer::~GpuMamba2Mixer() = default;

std::vector<float> GpuMamba2Mixer::mix(std::span<const float> proj) {
  const int64_t in_dim = config_.in_proj_dim(), inner = config_.intermediate();
  if (proj.empty() || int64_t(proj.size()) % in_dim != 0 || int64_t(proj.size()) / in_dim > ws_.max_tokens)
    fail("GpuMamba2Mixer: ", proj.size(), " values are not 1..", ws_.max_tokens, " rows of in_proj_dim ", in_dim);
  const int64_t n = int64_t(proj.size()) / in_dim;
  CTX_CUDA_CHECK(cudaMemcpy(ws_.proj.get(), proj.data(), proj.size() * 4, cudaMemcpyHostToDevice));
  layer_->mix(ws_, n, state_.get(), nullptr);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint16_t> bits(size_t(n * inner));
  CTX_CUDA_CHECK(cudaMemcpy(bits.data(), ws_.out.get(), bits.size() * 2, cudaMemcpyDeviceToHost));
  std::vector<float> out(bits.size());
  convert_to_f32(DType::BF16, bits.data(), out.data(), bits.size());
  return out;
}

std::vector<float> GpuMamba2Mixer::conv_state() const {
  std::vector<float> v(size_t(mamba2_conv_state_floats(config_)));
  CTX_CUDA_CHECK(cudaMemcpy(v.data(), state_.get(), v.size() * 4, cudaMemcpyDeviceToHost));
  return v;
}

std::vector<float> GpuMamba2Mixer::ssm_state() const {
  std::vector<float> v(size_t(mamba2_state_floats(config_) - mamba2_conv_state_floats(config_)));
  CTX_CUDA_CHECK(cudaMemcpy(v.data(), state_.get() + mamba2_conv_state_floats(config_), v.size() * 4,
                            cudaMemcpyDeviceToHost));
  return v;
}

}  // namespace ctx::cuda
