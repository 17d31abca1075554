#include "core/cuda/gpu_engine.h"

#include <algorithm>
#include <vector>

#include "core/base/dtype.h"
#include "core/cuda/cublas_api.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_allocator.h"
#include "core/cuda/event_timer.h"
#include "core/cuda/gpu_attention.h"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/linear_weights.h"
#include "core/model/rope.h"

namespace ctx::cuda {

namespace {

using Bf16Buffer = DeviceBuffer<bf16>;

// Prefill dequantizes a quantized matrix into bf16 tiles of at most this many elements (32 MiB).
constexpr int64_t kDequantScratchElems = int64_t(16) << 20;

// Projections that read the same input are stacked row-wise, so that decode reads the input once and
// launches one kernel: wqkv = [wq; wk; wv], w_gate_up = [w_gate; w_up] (biases likewise). Matrices
// are bf16 or stay in the CPU quant plugin's packed form (linear_weights.h).
struct LayerBuffers {
  Bf16Buffer attn_norm, ffn_norm;
  LinearWeights wqkv, wo, w_gate_up, w_down;
  Bf16Buffer bqkv, bo, b_gate_up, b_down, q_norm, k_norm;
  int64_t window = 0;
};

const bf16* ptr_or_null(const Bf16Buffer& b) { return b.size() ? b.get() : nullptr; }

class GpuEngineImpl final : public GpuEngine {
 public:
  GpuEngineImpl(const Model& model, const GpuEngineOptions& options);
  ~GpuEngineImpl() override;

  void reset() override { length_ = 0; }
  int64_t length() const override { return length_; }
  int64_t capacity() const override { return options_.capacity; }
  std::vector<float> forward(std::span<const int32_t> tokens, bool all_logits) override;
  std::vector<int32_t> generate_greedy(std::span<const int32_t> prompt, int64_t max_new_tokens,
                                       const std::vector<int32_t>& stop_ids, GpuTimings* timings) override;
  DeviceMemoryStats memory() const override { return alloc_.stats(); }
  void reset_peak_memory() override { alloc_.reset_peak(); }
  int64_t kv_cache_bytes() const override { return k_cache_.bytes() + v_cache_.bytes(); }
  int64_t weight_bytes() const override { return weight_bytes_; }
  int64_t bytes_read_per_token(int64_t length) const override;
  std::string device_name() const override { return device_name_; }
  std::vector<std::pair<std::string, double>> profile_decode_step() override;

 private:
  Bf16Buffer upload(const float* data, int64_t count);
  Bf16Buffer upload(const WeightVector& v) { return v.empty() ? Bf16Buffer() : upload(v.data, v.size); }
  // Row-wise concatenation of matrices with equal cols, bf16 or quantized (linear_weights.h).
  LinearWeights upload(std::initializer_list<const WeightMatrix*> ms, const char* what);
  // Row-wise concatenation of vectors (all empty gives an empty buffer).
  Bf16Buffer upload_stacked(std::initializer_list<const WeightVector*> vs);
  // out[n, rows] = x[n, cols] W^T in float32 through cuBLAS (tensor cores; quantized W dequantized first).
  void gemm(const bf16* x, int64_t n, const LinearWeights& w, float* out) {
    w.gemm(blas_, x, n, out, dequant_scratch_.get(), dequant_scratch_.size(), stream_);
  }
  // out[n, rows] (+)= alpha * (x[n, cols] W^T + bias): the GEMV kernel for one row, cuBLAS otherwise.
  void linear(const bf16* x, int64_t n, const LinearWeights& w, const Bf16Buffer& bias, float alpha, bool accumulate,
              float* out);
  // Embedding through the final norm for n tokens at positions *d_pos_ ..; x_ holds the normed rows.
  void run_layers(const int32_t* d_tokens, int64_t n);
  // Classifier rows [n, vocab] of the normed rows in x_ starting at row `from`, into `out`.
  void classify(int64_t from, int64_t n, float* out);
  void check_tokens(std::span<const int32_t> tokens) const;
  void set_position(int64_t pos);
  // One greedy token: the token in tokens_[0] at *pos_ -> next token in tokens_[0] and out_[*step_];
  // then *pos_ += 1, *step_ += 1. Launches only, no host sync: the CUDA graph captures this.
  void decode_step();
  void capture_decode_graph();

  ModelConfig config_;
  GpuEngineOptions options_;
  std::string device_name_;
  DeviceAllocator alloc_;  // declared before every buffer: destroyed after them
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cudaGraphExec_t graph_ = nullptr;
  int64_t weight_bytes_ = 0, length_ = 0, decode_splits_ = 1, logits_rows_ = 0;

  Bf16Buffer embed_, final_norm_;
  LinearWeights classifier_;  // lm_head, or a view of embed_ when tied
  bool tied_ = false;
  Bf16Buffer dequant_scratch_;  // prefill's bf16 tiles of quantized matrices (empty without any)
  std::vector<LayerBuffers> layers_;
  DeviceBuffer<float> inv_freq_;
  Bf16Buffer k_cache_, v_cache_;  // [layer][kv_head][capacity][hd]
  // Scratch for prefill_chunk tokens.
  DeviceBuffer<float> hidden_, qkv_, tmp_, partial_;
  DeviceBuffer<int> split_counters_;  // attention's split-KV arrival counters (kernels.h)
  // profile_decode_step(): an event after each stage, or null (no events: the normal case).
  std::vector<std::pair<const char*, cudaEvent_t>>* stage_events_ = nullptr;
  void stage_done(const char* name) {
    if (!stage_events_) return;
    cudaEvent_t e;
    CTX_CUDA_CHECK(cudaEventCreate(&e));
    CTX_CUDA_CHECK(cudaEventRecord(e, stream_));
    stage_events_->emplace_back(name, e);
  }
  DeviceBuffer<float> logits_;       // forward(): grows to the rows asked for
  DeviceBuffer<float> step_logits_;  // generate_greedy(): fixed, so the captured graph's pointer stays valid
  Bf16Buffer x_, qb_, attn_, act_;
  DeviceBuffer<int32_t> tokens_, pos_, step_, out_;  // token ids, position, step counter, generated ids
};

GpuEngineImpl::GpuEngineImpl(const Model& model, const GpuEngineOptions& options)
    : config_(model.config), options_(options) {
  const ModelConfig& c = config_;
  if (options_.capacity < 1 || options_.prefill_chunk < 1) fail("GPU engine: capacity and prefill_chunk must be >= 1");
  if (c.head_dim > 256) throw Unsupported(str_cat("GPU engine: head_dim ", c.head_dim, " > 256"));
  int dev = 0;
  CTX_CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CTX_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  device_name_ = prop.name;
  alloc_.set_limit(options_.memory_limit_bytes);
  CTX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CTX_CUBLAS_CHECK(cublas().create(&blas_));
  CTX_CUBLAS_CHECK(cublas().set_stream(blas_, stream_));

  const ModelWeights& w = model.weights;
  if (!w.embed.data) throw Unsupported("GPU engine: the model has no float32 embedding table");
  embed_ = upload(w.embed.data, w.embed.rows * w.embed.cols);
  final_norm_ = upload(w.final_norm);
  tied_ = w.lm_head.data == w.embed.data && !w.lm_head.quant;
  classifier_ = tied_ ? LinearWeights::borrow(embed_.get(), c.vocab_size, c.hidden_size) : upload({&w.lm_head}, "lm_head");
  int64_t dequant_elems = classifier_.quantized() ? classifier_.rows() * classifier_.cols() : 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& s = w.layers[size_t(l)];
    LayerBuffers b;
    b.attn_norm = upload(s.attn_norm), b.ffn_norm = upload(s.ffn_norm);
    b.wqkv = upload({&s.wq, &s.wk, &s.wv}, "q/k/v_proj"), b.wo = upload({&s.wo}, "o_proj");
    b.w_gate_up = upload({&s.w_gate, &s.w_up}, "gate/up_proj"), b.w_down = upload({&s.w_down}, "down_proj");
    for (const LinearWeights* m : {&b.wqkv, &b.wo, &b.w_gate_up, &b.w_down})
      if (m->quantized()) dequant_elems = std::max(dequant_elems, m->rows() * m->cols());
    b.bqkv = upload_stacked({&s.bq, &s.bk, &s.bv}), b.bo = upload(s.bo);
    b.b_gate_up = upload_stacked({&s.b_gate, &s.b_up}), b.b_down = upload(s.b_down);
    b.q_norm = upload(s.q_norm), b.k_norm = upload(s.k_norm);
    b.window = c.layer_window.empty() ? 0 : c.layer_window[size_t(l)];
    layers_.push_back(std::move(b));
  }
  const Rope rope(c.rope, c.head_dim);
  inv_freq_ = DeviceBuffer<float>(alloc_, int64_t(rope.inv_freq().size()));
  CTX_CUDA_CHECK(cudaMemcpy(inv_freq_.get(), rope.inv_freq().data(), inv_freq_.bytes(), cudaMemcpyHostToDevice));
  if (dequant_elems > 0) dequant_scratch_ = Bf16Buffer(alloc_, std::min(dequant_elems, kDequantScratchElems));

  const int64_t cap = options_.capacity, chunk = std::min(options_.prefill_chunk, cap);
  const int64_t kv = c.num_layers * c.num_kv_heads * cap * c.head_dim;
  k_cache_ = Bf16Buffer(alloc_, kv), v_cache_ = Bf16Buffer(alloc_, kv);
  decode_splits_ = default_attention_splits(cap, 1);  // split-KV chunks for decode
  const int64_t widest = std::max({c.hidden_size, c.q_dim() + 2 * c.kv_dim(), 2 * c.intermediate_size, c.vocab_size});
  hidden_ = DeviceBuffer<float>(alloc_, chunk * c.hidden_size);
  qkv_ = DeviceBuffer<float>(alloc_, chunk * (c.q_dim() + 2 * c.kv_dim()));
  tmp_ = DeviceBuffer<float>(alloc_, chunk * widest);
  partial_ = DeviceBuffer<float>(alloc_, decode_splits_ * c.num_heads * (c.head_dim + 2));
  split_counters_ = DeviceBuffer<int>(alloc_, c.num_heads);
  CTX_CUDA_CHECK(cudaMemset(split_counters_.get(), 0, split_counters_.bytes()));
  x_ = Bf16Buffer(alloc_, chunk * std::max(c.hidden_size, c.q_dim()));
  qb_ = Bf16Buffer(alloc_, chunk * c.q_dim()), attn_ = Bf16Buffer(alloc_, chunk * c.q_dim());
  act_ = Bf16Buffer(alloc_, chunk * c.intermediate_size);
  logits_ = DeviceBuffer<float>(alloc_, c.vocab_size), logits_rows_ = 1;
  step_logits_ = DeviceBuffer<float>(alloc_, c.vocab_size);
  tokens_ = DeviceBuffer<int32_t>(alloc_, chunk);
  pos_ = DeviceBuffer<int32_t>(alloc_, 1), step_ = DeviceBuffer<int32_t>(alloc_, 1);
  out_ = DeviceBuffer<int32_t>(alloc_, cap + 1);
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
}

GpuEngineImpl::~GpuEngineImpl() {
  if (graph_) cudaGraphExecDestroy(graph_);
  if (blas_) cublas().destroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

Bf16Buffer GpuEngineImpl::upload(const float* data, int64_t count) {
  weight_bytes_ += count * 2;
  return upload_bf16(alloc_, data, count);
}

LinearWeights GpuEngineImpl::upload(std::initializer_list<const WeightMatrix*> ms, const char* what) {
  LinearWeights w = LinearWeights::upload(alloc_, ms, what);
  weight_bytes_ += w.bytes();
  return w;
}

Bf16Buffer GpuEngineImpl::upload_stacked(std::initializer_list<const WeightVector*> vs) {
  std::vector<float> all;
  for (const WeightVector* v : vs)
    if (!v->empty()) all.insert(all.end(), v->data, v->data + v->size);
  if (all.empty()) return {};
  for (const WeightVector* v : vs) CTX_CHECK(!v->empty(), "biases are given for some stacked projections only");
  return upload(all.data(), int64_t(all.size()));
}

int64_t GpuEngineImpl::bytes_read_per_token(int64_t length) const {
  const ModelConfig& c = config_;
  const int64_t table = c.vocab_size * c.hidden_size * 2;
  int64_t bytes = weight_bytes_ - table + c.hidden_size * 2;  // the embedding: one row
  if (tied_) bytes += table;                                    // tied: the classifier reads the table
  return bytes + 2 * c.num_layers * c.kv_dim() * length * 2;   // K and V of every cached position
}

void GpuEngineImpl::linear(const bf16* x, int64_t n, const LinearWeights& w, const Bf16Buffer& bias, float alpha,
                           bool accumulate, float* out) {
  if (n == 1) return w.gemv(GemvInput{x}, ptr_or_null(bias), alpha, accumulate, out, stream_);
  gemm(x, n, w, tmp_.get());
  launch_bias_residual(tmp_.get(), ptr_or_null(bias), n, w.rows(), alpha, accumulate, out, stream_);
}

void GpuEngineImpl::run_layers(const int32_t* d_tokens, int64_t n) {
  const ModelConfig& c = config_;
  const int64_t d = c.hidden_size, hd = c.head_dim, ff = c.intermediate_size;
  const float eps = float(c.rms_norm_eps), residual = float(c.residual_multiplier);
  launch_embedding(embed_.get(), d_tokens, n, d, float(c.embedding_multiplier), hidden_.get(), stream_);
  const int64_t layer_kv = c.num_kv_heads * options_.capacity * hd;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerBuffers& b = layers_[l];
    // Decode (n == 1) fuses each RMSNorm into the GEMV that reads it.
    const GemvInput attn_in{nullptr, hidden_.get(), b.attn_norm.get(), eps};
    const GemvInput ffn_in{nullptr, hidden_.get(), b.ffn_norm.get(), eps};
    const int64_t qkv_dim = c.q_dim() + 2 * c.kv_dim();
    if (n == 1) {
      b.wqkv.gemv(attn_in, ptr_or_null(b.bqkv), 1.f, false, qkv_.get(), stream_);
    } else {
      launch_rmsnorm(hidden_.get(), b.attn_norm.get(), n, d, eps, x_.get(), stream_);
      linear(x_.get(), n, b.wqkv, b.bqkv, 1.f, false, qkv_.get());
    }
    stage_done("norm + qkv");
    QkvRopeParams r;
    r.q = qkv_.get(), r.k = qkv_.get() + c.q_dim(), r.v = qkv_.get() + c.q_dim() + c.kv_dim(), r.ld = qkv_dim;
    r.q_norm = ptr_or_null(b.q_norm), r.k_norm = ptr_or_null(b.k_norm), r.norm_eps = eps;
    r.inv_freq = inv_freq_.get();
    r.interleaved = c.rope.layout == RopeLayout::kInterleaved;
    r.pos0 = pos_.get();
    r.n = n, r.heads = c.num_heads, r.kv_heads = c.num_kv_heads, r.hd = hd, r.capacity = options_.capacity;
    r.q_out = qb_.get();
    r.k_cache = k_cache_.get() + int64_t(l) * layer_kv, r.v_cache = v_cache_.get() + int64_t(l) * layer_kv;
    launch_qkv_rope(r, stream_);
    stage_done("q/k norm + rope + kv write");
    AttentionParams a;
    a.q = qb_.get(), a.k_cache = r.k_cache, a.v_cache = r.v_cache, a.pos0 = pos_.get();
    a.n = n, a.heads = c.num_heads, a.kv_heads = c.num_kv_heads, a.hd = hd, a.capacity = options_.capacity;
    a.window = b.window, a.scale = float(c.softmax_scale());
    a.splits = n == 1 ? int(decode_splits_) : 1;
    a.partial = partial_.get(), a.counters = split_counters_.get(), a.out = attn_.get();
    a.vectorized = options_.vectorized_attention;
    launch_attention(a, stream_);
    stage_done("attention");
    linear(attn_.get(), n, b.wo, b.bo, residual, true, hidden_.get());
    stage_done("o_proj + residual");
    if (n == 1) {
      b.w_gate_up.gemv_swiglu(ffn_in, ptr_or_null(b.b_gate_up), act_.get(), stream_);
    } else {
      launch_rmsnorm(hidden_.get(), b.ffn_norm.get(), n, d, eps, x_.get(), stream_);
      gemm(x_.get(), n, b.w_gate_up, tmp_.get());
      launch_swiglu(tmp_.get(), ptr_or_null(b.b_gate_up), n, ff, act_.get(), stream_);
    }
    stage_done("norm + gate_up + swiglu");
    linear(act_.get(), n, b.w_down, b.b_down, residual, true, hidden_.get());
    stage_done("down_proj + residual");
  }
  launch_rmsnorm(hidden_.get(), final_norm_.get(), n, d, eps, x_.get(), stream_);
  stage_done("final norm");
}

void GpuEngineImpl::classify(int64_t from, int64_t n, float* out) {
  const ModelConfig& c = config_;
  linear(x_.get() + from * c.hidden_size, n, classifier_, Bf16Buffer(), float(1.0 / c.logits_scaling), false, out);
}

void GpuEngineImpl::check_tokens(std::span<const int32_t> tokens) const {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= config_.vocab_size)
      fail("GPU engine: token ", tokens[i], " at index ", i, " is outside the vocabulary [0, ", config_.vocab_size, ")");
  if (length_ + int64_t(tokens.size()) > options_.capacity)
    fail("GPU engine: ", length_, " cached + ", tokens.size(), " new tokens exceed the KV capacity ", options_.capacity);
}

void GpuEngineImpl::set_position(int64_t pos) {
  const int32_t p = int32_t(pos);
  CTX_CUDA_CHECK(cudaMemcpyAsync(pos_.get(), &p, sizeof p, cudaMemcpyHostToDevice, stream_));
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));  // `p` lives on this stack frame
}

std::vector<float> GpuEngineImpl::forward(std::span<const int32_t> tokens, bool all_logits) {
  check_tokens(tokens);
  const int64_t vocab = config_.vocab_size;
  std::vector<float> logits(size_t(all_logits ? int64_t(tokens.size()) * vocab : vocab));
  const int64_t chunk = std::min(options_.prefill_chunk, options_.capacity);
  for (size_t start = 0; start < tokens.size(); start += size_t(chunk)) {
    const int64_t n = std::min<int64_t>(chunk, int64_t(tokens.size() - start));
    CTX_CUDA_CHECK(cudaMemcpyAsync(tokens_.get(), tokens.data() + start, size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
    set_position(length_);
    run_layers(tokens_.get(), n);
    const bool last_chunk = start + size_t(n) == tokens.size();
    if (all_logits || last_chunk) {
      const int64_t rows = all_logits ? n : 1;
      if (rows > logits_rows_) logits_ = DeviceBuffer<float>(alloc_, rows * vocab), logits_rows_ = rows;
      classify(n - rows, rows, logits_.get());
      float* dst = logits.data() + (all_logits ? int64_t(start) * vocab : 0);
      CTX_CUDA_CHECK(cudaMemcpyAsync(dst, logits_.get(), size_t(rows * vocab) * 4, cudaMemcpyDeviceToHost, stream_));
    }
    CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    length_ += n;
  }
  return logits;
}

void GpuEngineImpl::decode_step() {
  run_layers(tokens_.get(), 1);
  classify(0, 1, step_logits_.get());
  stage_done("classifier");
  launch_argmax(step_logits_.get(), config_.vocab_size, tokens_.get(), out_.get(), step_.get(), stream_);
  launch_advance(pos_.get(), 1, step_.get(), stream_);
  stage_done("argmax + step");
}

std::vector<std::pair<std::string, double>> GpuEngineImpl::profile_decode_step() {
  if (length_ == 0 || length_ + 1 > options_.capacity)
    fail("GPU engine: profile_decode_step needs a prompt in the cache and room for one more token (", length_, " of ",
         options_.capacity, ")");
  const int32_t zero = 0;
  CTX_CUDA_CHECK(cudaMemcpyAsync(step_.get(), &zero, 4, cudaMemcpyHostToDevice, stream_));
  set_position(length_);
  std::vector<std::pair<const char*, cudaEvent_t>> events;
  stage_events_ = &events;
  stage_done("start");
  decode_step();
  stage_events_ = nullptr;
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  ++length_;
  std::vector<std::pair<std::string, double>> stages;
  for (size_t i = 1; i < events.size(); ++i) {
    float ms = 0;
    CTX_CUDA_CHECK(cudaEventElapsedTime(&ms, events[i - 1].second, events[i].second));
    auto it = std::find_if(stages.begin(), stages.end(), [&](const auto& s) { return s.first == events[i].first; });
    if (it == stages.end()) it = stages.insert(stages.end(), {events[i].first, 0.0});
    it->second += ms;
  }
  for (auto& e : events) cudaEventDestroy(e.second);
  return stages;
}

void GpuEngineImpl::capture_decode_graph() {
  cudaGraph_t graph = nullptr;
  CTX_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  decode_step();
  CTX_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  CTX_CUDA_CHECK(cudaGraphInstantiate(&graph_, graph, 0));
  CTX_CUDA_CHECK(cudaGraphDestroy(graph));
}

std::vector<int32_t> GpuEngineImpl::generate_greedy(std::span<const int32_t> prompt, int64_t max_new_tokens,
                                                    const std::vector<int32_t>& stop_ids, GpuTimings* timings) {
  reset();
  if (prompt.empty()) fail("GPU engine: the prompt is empty");
  if (max_new_tokens <= 0) return {};
  check_tokens(prompt);
  if (int64_t(prompt.size()) + max_new_tokens - 1 > options_.capacity)
    fail("GPU engine: prompt ", prompt.size(), " + ", max_new_tokens, " new tokens exceed the KV capacity ", options_.capacity);
  cudaEvent_t ev[3];
  for (auto& e : ev) CTX_CUDA_CHECK(cudaEventCreate(&e));
  CTX_CUDA_CHECK(cudaEventRecord(ev[0], stream_));
  // Prefill: every chunk but the last through forward(); the last one also picks the first token.
  const int64_t chunk = std::min(options_.prefill_chunk, options_.capacity);
  const size_t head = prompt.size() > size_t(chunk) ? (prompt.size() - 1) / size_t(chunk) * size_t(chunk) : 0;
  if (head > 0) forward(prompt.first(head), false);
  const auto tail = prompt.subspan(head);
  const int64_t n = int64_t(tail.size());
  const int32_t zero = 0;
  CTX_CUDA_CHECK(cudaMemcpyAsync(tokens_.get(), tail.data(), size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
  CTX_CUDA_CHECK(cudaMemcpyAsync(step_.get(), &zero, 4, cudaMemcpyHostToDevice, stream_));
  set_position(length_);
  run_layers(tokens_.get(), n);
  classify(n - 1, 1, step_logits_.get());
  launch_argmax(step_logits_.get(), config_.vocab_size, tokens_.get(), out_.get(), step_.get(), stream_);
  launch_advance(pos_.get(), int32_t(n), step_.get(), stream_);  // pos = prompt length, step = 1
  CTX_CUDA_CHECK(cudaEventRecord(ev[1], stream_));
  length_ += n;

  // Decode: one graph replay per token; stop ids are checked every few steps (a replay past a stop
  // token only computes tokens that are then dropped).
  auto is_stop = [&](int32_t t) { return std::find(stop_ids.begin(), stop_ids.end(), t) != stop_ids.end(); };
  std::vector<int32_t> out(size_t(max_new_tokens), -1);
  int64_t steps = 1;  // tokens produced
  auto fetch = [&] {
    CTX_CUDA_CHECK(cudaMemcpyAsync(out.data(), out_.get(), size_t(steps) * 4, cudaMemcpyDeviceToHost, stream_));
    CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (int64_t i = 0; i < steps; ++i)
      if (is_stop(out[size_t(i)])) return i + 1;
    return int64_t(0);
  };
  int64_t stop_at = stop_ids.empty() ? 0 : fetch();
  if (options_.use_graphs && !graph_ && stop_at == 0 && steps < max_new_tokens) capture_decode_graph();
  while (stop_at == 0 && steps < max_new_tokens) {
    if (options_.use_graphs) {
      CTX_CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
    } else {
      decode_step();
    }
    ++steps, ++length_;
    if (!stop_ids.empty() && (steps % 8 == 0 || steps == max_new_tokens)) stop_at = fetch();
  }
  CTX_CUDA_CHECK(cudaEventRecord(ev[2], stream_));
  CTX_CUDA_CHECK(cudaMemcpyAsync(out.data(), out_.get(), size_t(steps) * 4, cudaMemcpyDeviceToHost, stream_));
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (timings) {
    float ms = 0;
    CTX_CUDA_CHECK(cudaEventElapsedTime(&ms, ev[0], ev[1]));
    timings->prefill_ms = ms;
    CTX_CUDA_CHECK(cudaEventElapsedTime(&ms, ev[1], ev[2]));
    timings->decode_ms = ms;
    timings->decode_steps = steps - 1;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  out.resize(size_t(steps));
  for (size_t i = 0; i < out.size(); ++i)
    if (is_stop(out[i])) {
      out.resize(i + 1);
      break;
    }
  return out;
}

}  // namespace

std::unique_ptr<GpuEngine> GpuEngine::create(const Model& model, const GpuEngineOptions& options) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw Unsupported("GPU engine: no CUDA device is available");
  }
  if (model.config.model_type == "granite_hybrid" || model.config.model_type == "granitemoehybrid")
    throw Unsupported("GPU engine: hybrid Mamba layers are not implemented on the GPU");
  return std::make_unique<GpuEngineImpl>(model, options);
}

double measure_gemv_bandwidth(int64_t rows, int64_t cols, int reps) {
  DeviceAllocator alloc;
  const int64_t count = copies_beyond_l2(rows * cols * 2, 2);
  std::vector<DeviceBuffer<bf16>> mats;
  for (int64_t i = 0; i < count; ++i) {
    mats.emplace_back(alloc, rows * cols);
    launch_fill_random(mats.back().get(), rows * cols, uint64_t(i + 1), nullptr);
  }
  DeviceBuffer<bf16> x(alloc, cols);
  launch_fill_random(x.get(), cols, 99, nullptr);
  DeviceBuffer<float> y(alloc, rows);
  constexpr int kLaunches = 20;
  int64_t next = 0;
  const double ms = median_ms(reps, [&] {
    for (int i = 0; i < kLaunches; ++i)
      launch_gemv(mats[size_t(next++ % count)].get(), GemvInput{x.get()}, rows, cols, nullptr, 1.f, false, y.get(),
                  nullptr);
  });
  return double(kLaunches) * double(rows * cols * 2 + cols * 2) / (ms * 1e-3);
}

double measure_copy_bandwidth(int64_t bytes, int reps) {
  DeviceAllocator alloc;
  DeviceBuffer<char> a(alloc, bytes), b(alloc, bytes);
  CTX_CUDA_CHECK(cudaMemset(a.get(), 1, size_t(bytes)));
  const double ms = median_ms(reps, [&] {
    CTX_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), size_t(bytes), cudaMemcpyDeviceToDevice));
  });
  return 2.0 * double(bytes) / (ms * 1e-3);
}

}  // namespace ctx::cuda
