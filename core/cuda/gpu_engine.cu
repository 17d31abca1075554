#include "core/cuda/gpu_engine.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/base/dtype.h"
#include "core/cuda/cublas_api.h"
#include "core/cuda/cuda_check.h"
#include "core/cuda/device_allocator.h"
#include "core/cuda/event_timer.h"
#include "core/cuda/gpu_attention.h"
#include "core/cuda/gpu_eager_attention.h"
#include "core/cuda/gpu_kv_cache.h"
#include "core/cuda/gpu_kv_compressor.h"
#include "core/cuda/gpu_mamba2.h"
#include "core/cuda/kernels/flash_attention.h"
#include "core/cuda/kernels/kernels.h"
#include "core/cuda/linear_weights.h"
#include "core/cuda/kernels/kivi_kernels.h"
#include "core/cuda/kernels/quant_kernels.h"
#include "core/model/rope.h"

namespace ctx::cuda {

namespace {

using Bf16Buffer = DeviceBuffer<bf16>;

// Prefill dequantizes a quantized matrix into bf16 tiles of at most this many elements (32 MiB).
constexpr int64_t kDequantScratchElems = int64_t(16) << 20;

// Projections that read the same input are stacked row-wise, so that decode reads the input once and
// launches one kernel: wqkv = [wq; wk; wv], w_gate_up = [w_gate; w_up] (biases likewise). Matrices
// are bf16 or stay in the CPU quant plugin's packed form (linear_weights.h).
// A Mamba-2 layer (hybrid models) has `mamba` and w_in/w_out (in_proj, out_proj) instead of the
// attention weights, and a slot in the recurrent state instead of one in the KV cache.
struct LayerBuffers {
  Bf16Buffer attn_norm, ffn_norm;
  LinearWeights wqkv, wo, w_gate_up, w_down;
  Bf16Buffer bqkv, bo, b_gate_up, b_down, q_norm, k_norm;
  int64_t window = 0;
  int64_t kv_layer = -1;  // attention layers: index in the KV cache
  std::unique_ptr<GpuMamba2Layer> mamba;
  LinearWeights w_in, w_out;
  Bf16Buffer b_in, b_out;
  int64_t state_offset = 0;  // floats into the recurrent state
};

const bf16* ptr_or_null(const Bf16Buffer& b) { return b.size() ? b.get() : nullptr; }

// A generation's timings from its events (start, first token, end; recorded and complete), which
// it then destroys; steps: tokens produced (the first by the prefill).
void finish_timings(cudaEvent_t (&ev)[3], int64_t steps, GpuTimings* timings) {
  if (timings) {
    float ms = 0;
    CTX_CUDA_CHECK(cudaEventElapsedTime(&ms, ev[0], ev[1]));
    timings->prefill_ms = ms;
    CTX_CUDA_CHECK(cudaEventElapsedTime(&ms, ev[1], ev[2]));
    timings->decode_ms = ms;
    timings->decode_steps = steps - 1;
  }
  for (auto& e : ev) cudaEventDestroy(e);
}

// GpuEngineOptions::fused_rope's modes.
void check_fused_rope(int mode) {
  if (mode < 0 || mode > 2) fail("GPU engine: fused_rope ", mode, " must be 0, 1 or 2");
}
void check_attention_prefetch(int mode) {
  if (mode < -1 || mode > 1) fail("GPU engine: attention_prefetch ", mode, " must be 0, 1 or -1");
}
void check_decode_min_chunk(int64_t keys) {
  if (keys < 0) fail("GPU engine: decode_min_chunk ", keys, " must be >= 0");
}

class GpuEngineImpl final : public GpuEngine {
 public:
  GpuEngineImpl(const Model& model, const GpuEngineOptions& options);
  ~GpuEngineImpl() override;

  void reset() override;
  int64_t length() const override { return length_; }
  std::vector<std::vector<int64_t>> kv_positions(int64_t kv_layer) const override;
  int64_t capacity() const override { return options_.capacity; }
  std::vector<float> forward(std::span<const int32_t> tokens, bool all_logits) override;
  std::vector<int32_t> generate_greedy(std::span<const int32_t> prompt, int64_t max_new_tokens,
                                       const std::vector<int32_t>& stop_ids, GpuTimings* timings) override;
  std::vector<std::vector<int32_t>> generate_greedy_batch(const std::vector<std::vector<int32_t>>& prompts,
                                                          int64_t max_new_tokens, const std::vector<int32_t>& stop_ids,
                                                          GpuTimings* timings) override;
  DeviceMemoryStats memory() const override { return alloc_.stats(); }
  void reset_peak_memory() override { alloc_.reset_peak(); }
  int64_t kv_cache_bytes() const override { return kv_->bytes() + mamba_state_.bytes(); }
  int64_t kv_cache_bytes_in_use() const override { return kv_->bytes_in_use() + mamba_state_.bytes(); }
  int64_t weight_bytes() const override { return weight_bytes_; }
  int64_t bytes_read_per_token(int64_t length) const override;
  std::string device_name() const override { return device_name_; }
  std::vector<std::pair<std::string, double>> profile_decode_step() override;
  void set_gemv_chain(bool on) override { options_.gemv_chain = on, drop_decode_graphs(); }
  void set_fused_rope(int mode) override { check_fused_rope(mode), options_.fused_rope = mode, drop_decode_graphs(); }
  void set_attention_prefetch(int mode) override {
    check_attention_prefetch(mode), options_.attention_prefetch = mode, drop_decode_graphs();
  }
  void set_attention_overlap(bool on) override { options_.attention_overlap = on, drop_decode_graphs(); }
  void set_norm_partials(bool on) override { options_.norm_partials = on, drop_decode_graphs(); }
  void set_decode_min_chunk(int64_t keys) override {
    check_decode_min_chunk(keys), options_.decode_min_chunk = keys, drop_decode_graphs();
  }

 private:
  // A captured decode step of one sequence (rows 0: decode_step) or of a batch of `rows`
  // (batch_decode_step), valid while the KV pool has not moved since (kv_version).
  struct DecodeGraph {
    cudaGraphExec_t exec = nullptr;
    int64_t rows = 0, kv_version = -1;
  };
  // The next decode steps capture their graphs again (after an option they bake in changed).
  void drop_decode_graphs() {
    for (DecodeGraph& g : graphs_) g.kv_version = -1;
  }
  Bf16Buffer upload(const float* data, int64_t count);
  Bf16Buffer upload(const WeightVector& v) { return v.empty() ? Bf16Buffer() : upload(v.data, v.size); }
  // Row-wise concatenation of matrices with equal cols, bf16 or quantized (linear_weights.h).
  LinearWeights upload(std::initializer_list<const WeightMatrix*> ms, const char* what);
  // Row-wise concatenation of vectors (all empty gives an empty buffer).
  Bf16Buffer upload_stacked(std::initializer_list<const WeightVector*> vs);
  // out[n, rows] = x[n, cols] W^T in float32 through cuBLAS (tensor cores; quantized W dequantized first).
  void gemm(const bf16* x, int64_t n, const LinearWeights& w, float* out) {
    GemmScratch scratch;
    scratch.tiles = dequant_scratch_.get(), scratch.tile_elems = dequant_scratch_.size();
    scratch.inputs = int8_inputs_.get(), scratch.input_elems = int8_inputs_.size();
    scratch.columns = int8_columns_.get(), scratch.column_count = int8_columns_.size();
    w.gemm(blas_, x, n, out, scratch, stream_);
  }
  // out[n, rows] (+)= alpha * (x[n, cols] W^T + bias): the GEMV kernel for one row, cuBLAS otherwise.
  void linear(const bf16* x, int64_t n, const LinearWeights& w, const Bf16Buffer& bias, float alpha, bool accumulate,
              float* out);
  // linear() into hidden_ (the residual add), which leaves hidden_'s sums of squares in hidden_sumsq_
  // where it can (GpuEngineOptions::norm_partials: one row, quantized weights).
  void add_to_hidden(const bf16* x, int64_t n, const LinearWeights& w, const Bf16Buffer& bias);
  // The fused RMSNorm of hidden_ (one row) with `norm` as a decode GEMV's input, with hidden_'s sums of
  // squares when the last write of hidden_ left them.
  GemvInput normed_hidden(const Bf16Buffer& norm) const;
  // Embedding through the final norm; x_ holds the normed rows. slot >= 0: n tokens of that sequence
  // at positions *pos_ ..; slot < 0 (batched decode): row t is sequence t's token at lens_[t] - 1.
  // position: the host's copy of *pos_ where it is known (-1: not known; eager attention needs it).
  void run_layers(const int32_t* d_tokens, int64_t n, int64_t slot, int64_t position = -1);
  // Prefill of `tokens` into `slot` from position length (chunked); the last token's logits (scaled
  // as classify does) into `last_logits` when not null, every token's into `all_logits` when not null.
  // upcoming: entries the caller will add after this prefill (kept reserved when compression shrinks).
  void prefill(std::span<const int32_t> tokens, int64_t slot, int64_t length, float* last_logits,
               float* all_logits_host, int64_t upcoming = 0);
  // Rows [0, n) of hidden_ through layer b's Mamba-2 mixer, added to hidden_ (the residual).
  void mamba_mixer(const LayerBuffers& b, int64_t n);
  // Decode (one row): layer l's o_proj + residual, RMSNorm + gate_up + SwiGLU and down_proj + residual,
  // and where layer l + 1 is an attention layer its RMSNorm + qkv, as the stages of one GEMV chain
  // (options_.gemv_chain); returns how many stages it filled (3 or 4), or 0 where the weights cannot
  // be chained (bf16, llm_int8, a Mamba-2 layer, ...).
  int gemv_chain(size_t l, QuantGemvStage (&stages)[kMaxGemvChain]) const;
  // Classifier rows [n, vocab] of rows [from, from + n) of the last run_layers, into `out`: the normed
  // rows in x_, or after a one-row run its hidden state, the final RMSNorm fused into the GEMV.
  void classify(int64_t from, int64_t n, float* out);
  void check_tokens(std::span<const int32_t> tokens) const;
  // Compressed caches: the step that brought the tokens seen to `position` wrote n_new entries per
  // layer (device_advanced: a kernel already added them to kv_len_dev_); compresses when the policy
  // says so and keeps blocks for the longest layer plus `upcoming` more entries.
  void after_step(int64_t n_new, int64_t position, int64_t upcoming, bool device_advanced);
  // KIVI + compression: KV layer `layer`'s entries as full bf16 rows [kv_head][kv_len_ + extra][hd]
  // (the quantized prefix dequantized, the rest from the ring), the rows' view for the compressor.
  struct FullLayer {
    DeviceBuffer<bf16> k, v;
    KvLayerRows rows;
  };
  // `quantized`: the prefix taken from the codes (-1: quantized_length(entries), the groups of all of them).
  FullLayer expand_layer(int64_t layer, int64_t entries, int64_t quantized = -1, int64_t slot = 0);
  // KIVI prefill chunk (n tokens of `slot` at host position `position`): the layer expanded to bf16 with
  // the chunk's own rows (its prefix as attention must see it: the groups quantized before this
  // forward), then the flash prefill kernel over that copy, a transient of one layer's entries. The
  // split-KV kernel, which reads the codes in place, re-reads every key for each query row. false when
  // the flash kernels do not take the shape (the caller runs launch_attention).
  bool kivi_flash_prefill(AttentionParams a, int64_t layer, int64_t n, int64_t position, int64_t slot);
  // KIVI + compression: rebuilds KV layer `layer` of kv_len_[layer] entries keeping `count`
  // (KvCache::compact's semantics): expanded to bf16, compacted by the compressor, the kept entries'
  // quantized prefix re-quantized in fresh groups and the rest written to the ring.
  void compress_kivi_layer(int64_t layer, int64_t count, int64_t position, int64_t n_new);
  // Entries the longest layer holds (the position without compression).
  int64_t kv_extent() const;
  void set_position(int64_t pos);
  // One greedy token: the token in tokens_[0] at *pos_ -> next token in tokens_[0] and out_[*step_];
  // then *pos_ += 1, *step_ += 1. Launches only, no host sync: the CUDA graph captures this.
  void decode_step();
  // The batched step: rows tokens_[0..rows) -> next tokens, out_[*step_ * rows + t], lens_ += 1.
  void batch_decode_step(int64_t rows);
  // graphs_[rows > 0]: captured again unless it holds the step of `rows` for the KV pool as it is.
  DecodeGraph& decode_graph(int64_t rows);
  // The decode loop of a greedy generation from `steps` tokens (1: the prompt's) up to max_new_tokens,
  // a graph replay per step (use_graphs) or the step's launches; rows 0: one sequence (decode_step,
  // the KV policy after each step), else a batch of rows. Checks for stop ids every 8 steps (a step
  // past a stop token only computes a token that is then dropped). Returns the tokens produced.
  int64_t decode_loop(int64_t steps, int64_t rows, int64_t max_new_tokens, const std::vector<int32_t>& stop_ids);
  // Tokens of a greedy run from out_ (steps x rows, row-major by step), each cut at its first stop;
  // stopped(): whether every row has reached a stop id (false without stop ids; waits for the stream).
  std::vector<std::vector<int32_t>> fetch_outputs(int64_t steps, int64_t rows, const std::vector<int32_t>& stop_ids);
  bool stopped(int64_t steps, int64_t rows, const std::vector<int32_t>& stop_ids);
  // Errors for an empty prompt, one that with max_new_tokens exceeds the capacity, or bad ids;
  // `which` names it in the message.
  void check_prompt(std::span<const int32_t> prompt, int64_t max_new_tokens, const std::string& which) const;

  ModelConfig config_;
  GpuEngineOptions options_;
  std::string device_name_;
  DeviceAllocator alloc_;  // declared before every buffer: destroyed after them
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  // The decode graphs of one sequence and of a batch (kv_version: kv_->version() at the capture; a
  // grown paged pool has moved, they are captured again).
  DecodeGraph graphs_[2];
  int64_t weight_bytes_ = 0, length_ = 0, decode_splits_ = 1, logits_rows_ = 0;
  // Prefill attention tiles: where the card has Hopper's wgmma, the TMA + warp-specialised kernel
  // (launch_flash_prefill runs what it does not take on the plain wgmma 64x4 kernel, paged KV
  // included: the TMA kernel's tensor maps assume a contiguous cache; bench/RESULTS.md "flash
  // prefill" has both against cuDNN), else mma.sync. Paged KV reads K/V through the slot's block
  // table row in the same kernels (kernels/kv_rows.cuh).
  FlashConfig flash_config_ =
      flash_prefill_wgmma_available() ? FlashConfig{FlashImpl::kWgmmaTma, 0, 0} : FlashConfig{};

  Bf16Buffer embed_, final_norm_;
  bool final_norm_fused_ = false;  // the last run_layers left the final RMSNorm to classify()
  LinearWeights classifier_;  // lm_head, or a view of embed_ when tied
  bool tied_ = false;
  Bf16Buffer dequant_scratch_;  // prefill's bf16 tiles of quantized matrices (empty without any)
  // llm_int8 (empty without): prefill's staged inputs [chunk, widest such cols] and outlier column flags.
  Bf16Buffer int8_inputs_;
  DeviceBuffer<uint8_t> int8_columns_;
  std::vector<LayerBuffers> layers_;
  DeviceBuffer<float> inv_freq_;
  std::unique_ptr<GpuKvCache> kv_;   // attention layers only
  std::unique_ptr<EagerAttention> eager_;  // options_.eager_attention: attention by it
  DeviceBuffer<float> mamba_state_;  // hybrid models: every Mamba-2 layer's recurrent state
  GpuMamba2Workspace mamba_ws_;
  // Scratch for prefill_chunk tokens.
  DeviceBuffer<float> hidden_, qkv_, tmp_, partial_;
  DeviceBuffer<int> split_counters_;  // attention's split-KV arrival counters (kernels.h)
  // attention_overlap: the qkv GEMV's output while attention reads it (every element kQkvUnwritten
  // between decode steps) and the readers' counters (kernels.h AttentionParams::Rope::overlap).
  DeviceBuffer<float> qkv_overlap_;
  DeviceBuffer<int> qkv_readers_;
  DeviceBuffer<unsigned> chain_barrier_;  // the GEMV chains' grid barrier (quant_kernels.h)
  // norm_partials: hidden_'s sums of squares by tile, as the GEMV that last added to it left them
  // (hidden_parts_ of them; 0: none, the GEMVs that normalize hidden_ sum it themselves). Allocated
  // with any quantized o_proj, down_proj or Mamba out_proj.
  DeviceBuffer<float> hidden_sumsq_;
  int64_t hidden_parts_ = 0;
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
  DeviceBuffer<float> step_logits_;  // [max_batch, vocab]: fixed, so the captured graphs' pointers stay valid
  Bf16Buffer x_, qb_, attn_, act_;
  // Token ids, position, step counter, generated ids ([steps][rows]), batched sequence lengths.
  DeviceBuffer<int32_t> tokens_, pos_, step_, out_, lens_;
  // KV compression (null without): entries per KV layer on the device (read by the captured graph)
  // and on the host, decode steps since the last compression. The compressor tracks where each
  // layer's entries came from (kv_positions).
  std::unique_ptr<GpuKvCompressor> compressor_;
  DeviceBuffer<int32_t> kv_len_dev_;
  std::vector<int64_t> kv_len_;
  int64_t since_compress_ = 0;
};

GpuEngineImpl::GpuEngineImpl(const Model& model, const GpuEngineOptions& options)
    : config_(model.config), options_(options) {
  const ModelConfig& c = config_;
  if (options_.capacity < 1 || options_.prefill_chunk < 1) fail("GPU engine: capacity and prefill_chunk must be >= 1");
  check_decode_min_chunk(options_.decode_min_chunk);
  check_attention_prefetch(options_.attention_prefetch);
  check_fused_rope(options_.fused_rope);
  if (options_.max_batch < 1 || options_.max_batch > std::min(options_.prefill_chunk, options_.capacity))
    fail("GPU engine: max_batch ", options_.max_batch, " must be in 1..min(prefill_chunk, capacity)");
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
  int64_t int8_cols = classifier_.int8_activations() ? classifier_.cols() : 0;
  const int64_t state_floats = c.num_mamba_layers() > 0 ? mamba2_state_floats(c.mamba) : 0;
  int64_t mamba_layers = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& s = w.layers[size_t(l)];
    LayerBuffers b;
    b.attn_norm = upload(s.attn_norm), b.ffn_norm = upload(s.ffn_norm);
    if (c.layer_kind(l) == LayerKind::kMamba2) {
      b.mamba = std::make_unique<GpuMamba2Layer>(alloc_, c.mamba, float(c.rms_norm_eps), s.mamba);
      weight_bytes_ += b.mamba->weight_bytes();
      b.w_in = upload({&s.mamba.in_proj}, "mamba.in_proj"), b.w_out = upload({&s.mamba.out_proj}, "mamba.out_proj");
      b.b_in = upload(s.mamba.in_bias), b.b_out = upload(s.mamba.out_bias);
      b.state_offset = mamba_layers++ * state_floats;
    } else {
      b.kv_layer = c.kv_layer(l);
      b.wqkv = upload({&s.wq, &s.wk, &s.wv}, "q/k/v_proj"), b.wo = upload({&s.wo}, "o_proj");
      b.bqkv = upload_stacked({&s.bq, &s.bk, &s.bv}), b.bo = upload(s.bo);
      b.q_norm = upload(s.q_norm), b.k_norm = upload(s.k_norm);
    }
    b.w_gate_up = upload({&s.w_gate, &s.w_up}, "gate/up_proj"), b.w_down = upload({&s.w_down}, "down_proj");
    for (const LinearWeights* m : {&b.wqkv, &b.wo, &b.w_gate_up, &b.w_down, &b.w_in, &b.w_out}) {
      if (m->quantized()) dequant_elems = std::max(dequant_elems, m->rows() * m->cols());
      if (m->int8_activations()) int8_cols = std::max(int8_cols, m->cols());
    }
    b.b_gate_up = upload_stacked({&s.b_gate, &s.b_up}), b.b_down = upload(s.b_down);
    b.window = c.layer_window.empty() ? 0 : c.layer_window[size_t(l)];
    layers_.push_back(std::move(b));
  }
  const Rope rope(c.rope, c.head_dim);
  // Without positions (Granite-4.0-H "nope") every angle is 0: the RoPE kernel then copies q and k.
  std::vector<float> inv_freq = rope.inv_freq();
  if (!c.use_rope) std::fill(inv_freq.begin(), inv_freq.end(), 0.f);
  inv_freq_ = upload_f32(alloc_, inv_freq.data(), int64_t(inv_freq.size()));
  if (dequant_elems > 0) dequant_scratch_ = Bf16Buffer(alloc_, std::min(dequant_elems, kDequantScratchElems));

  const int64_t cap = options_.capacity, chunk = std::min(options_.prefill_chunk, cap);
  if (int8_cols > 0) {  // every GEMM takes at most chunk rows (prefill chunks, batched decode, logits)
    int8_inputs_ = Bf16Buffer(alloc_, chunk * int8_cols);
    int8_columns_ = DeviceBuffer<uint8_t>(alloc_, int8_cols);
  }
  GpuKvShape kv;
  kv.layers = c.num_kv_layers(), kv.kv_heads = c.num_kv_heads, kv.head_dim = c.head_dim;
  kv.slots = options_.max_batch, kv.capacity = cap;
  kv.block_size = options_.kv_block_size, kv.pool_positions = options_.kv_pool_positions;
  kv.quant = options_.kv_quant, kv.max_forward = chunk;
  if (kv.quant.enabled()) {
    if (!options_.flex_mask.empty()) throw Unsupported("GPU engine: KIVI KV (kv_quant) with a flex mask is not implemented");
    for (const LayerBuffers& b : layers_)
      if (b.window > 0) throw Unsupported("GPU engine: KIVI KV (kv_quant) with sliding-window layers is not implemented");
  }
  kv_ = std::make_unique<GpuKvCache>(alloc_, kv);
  if (c.num_mamba_layers() > 0) {
    mamba_state_ = DeviceBuffer<float>(alloc_, c.num_mamba_layers() * state_floats);
    CTX_CUDA_CHECK(cudaMemset(mamba_state_.get(), 0, size_t(mamba_state_.bytes())));
    mamba_ws_ = GpuMamba2Workspace(alloc_, c.mamba, chunk);
  }
  if (options_.eager_attention) {
    eager_ = std::make_unique<EagerAttention>(alloc_, blas_, options_.eager_score_limit_bytes);
    options_.use_graphs = false;  // the GEMM shapes follow the length
  }
  // split-KV chunks for decode (fewer for GQA on tensor cores: gpu_attention.h)
  decode_splits_ = default_attention_splits(
      cap, 1, options_.vectorized_attention && uses_tensor_core_gqa(c.num_heads, c.num_kv_heads, c.head_dim));
  // The workspace of the widest decode (attention_overlap: one more chunk, the new key's).
  int64_t partial_rows = (decode_splits_ + 1) * c.num_heads;
  for (int64_t b = 2; b <= options_.max_batch; ++b)
    partial_rows = std::max(partial_rows, b * c.num_heads * default_batched_splits(cap, b, c.num_heads));
  const int64_t widest = std::max({c.hidden_size, c.q_dim() + 2 * c.kv_dim(), 2 * c.intermediate_size, c.vocab_size,
                                   c.mamba.in_proj_dim()});
  hidden_ = DeviceBuffer<float>(alloc_, chunk * c.hidden_size);
  qkv_ = DeviceBuffer<float>(alloc_, chunk * (c.q_dim() + 2 * c.kv_dim()));
  tmp_ = DeviceBuffer<float>(alloc_, chunk * widest);
  partial_ = DeviceBuffer<float>(alloc_, partial_rows * (c.head_dim + 2));
  split_counters_ = DeviceBuffer<int>(alloc_, options_.max_batch * c.num_heads);
  CTX_CUDA_CHECK(cudaMemset(split_counters_.get(), 0, split_counters_.bytes()));
  qkv_overlap_ = DeviceBuffer<float>(alloc_, c.q_dim() + 2 * c.kv_dim());
  static_assert(kQkvUnwritten == 0xffffffffu, "filled bytewise");
  CTX_CUDA_CHECK(cudaMemset(qkv_overlap_.get(), 0xff, qkv_overlap_.bytes()));
  qkv_readers_ = DeviceBuffer<int>(alloc_, c.num_heads + c.num_kv_heads);
  CTX_CUDA_CHECK(cudaMemset(qkv_readers_.get(), 0, qkv_readers_.bytes()));
  chain_barrier_ = DeviceBuffer<unsigned>(alloc_, 2);
  CTX_CUDA_CHECK(cudaMemset(chain_barrier_.get(), 0, chain_barrier_.bytes()));
  int64_t sumsq_parts = 0;
  for (const LayerBuffers& b : layers_)
    for (const LinearWeights* m : {&b.wo, &b.w_down, &b.w_out}) sumsq_parts = std::max(sumsq_parts, m->sumsq_parts());
  if (sumsq_parts > 0) hidden_sumsq_ = DeviceBuffer<float>(alloc_, sumsq_parts);  // set_norm_partials may turn it on
  x_ = Bf16Buffer(alloc_, chunk * std::max(c.hidden_size, c.q_dim()));
  qb_ = Bf16Buffer(alloc_, chunk * c.q_dim()), attn_ = Bf16Buffer(alloc_, chunk * c.q_dim());
  act_ = Bf16Buffer(alloc_, chunk * c.intermediate_size);
  logits_ = DeviceBuffer<float>(alloc_, c.vocab_size), logits_rows_ = 1;
  step_logits_ = DeviceBuffer<float>(alloc_, options_.max_batch * c.vocab_size);
  tokens_ = DeviceBuffer<int32_t>(alloc_, chunk);
  pos_ = DeviceBuffer<int32_t>(alloc_, 1), step_ = DeviceBuffer<int32_t>(alloc_, 1);
  out_ = DeviceBuffer<int32_t>(alloc_, (cap + 1) * options_.max_batch);
  lens_ = DeviceBuffer<int32_t>(alloc_, options_.max_batch);
  if (options_.kv.enabled()) {
    GpuKvScoreShape scores;
    scores.layers = c.num_kv_layers(), scores.heads = c.num_heads, scores.kv_heads = c.num_kv_heads;
    scores.head_dim = c.head_dim, scores.capacity = cap, scores.max_rows = chunk, scores.scale = float(c.softmax_scale());
    compressor_ = std::make_unique<GpuKvCompressor>(alloc_, options_.kv, scores);
    kv_len_dev_ = DeviceBuffer<int32_t>(alloc_, std::max<int64_t>(1, c.num_kv_layers()));
  }
  CTX_CUDA_CHECK(cudaDeviceSynchronize());
  if (compressor_) reset();  // the entry counts and positions start empty
}

void GpuEngineImpl::reset() {
  length_ = 0;
  kv_->release_all();
  kv_->fit_codes(0, stream_);  // KIVI: the codes follow the entries held
  if (compressor_) {
    kv_len_.assign(size_t(config_.num_kv_layers()), 0);
    since_compress_ = 0;
    compressor_->reset(stream_);
    const std::vector<int32_t> zeros(kv_len_.size() + 1, 0);
    CTX_CUDA_CHECK(cudaMemcpyAsync(kv_len_dev_.get(), zeros.data(), size_t(kv_len_dev_.bytes()), cudaMemcpyHostToDevice,
                                   stream_));
    CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));  // `zeros` lives on this stack frame
  }
  if (mamba_state_.size()) CTX_CUDA_CHECK(cudaMemsetAsync(mamba_state_.get(), 0, size_t(mamba_state_.bytes()), stream_));
}

GpuEngineImpl::~GpuEngineImpl() {
  for (DecodeGraph& g : graphs_)
    if (g.exec) cudaGraphExecDestroy(g.exec);
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
  bytes += 2 * mamba_state_.bytes();                          // the recurrent state, read and written
  // K and V of every cached position (KIVI: the quantized prefix as codes and params).
  const KvQuantConfig& q = options_.kv_quant;
  return bytes + c.num_kv_layers() * c.num_kv_heads *
                     kivi_head_bytes(q.bits, q.group, c.head_dim, length, q.quantized_length(length));
}

void GpuEngineImpl::linear(const bf16* x, int64_t n, const LinearWeights& w, const Bf16Buffer& bias, float alpha,
                           bool accumulate, float* out) {
  if (n == 1) {
    w.gemv(GemvInput{x}, ptr_or_null(bias), alpha, accumulate, out, stream_);
    return;
  }
  if (w.rows_supported(n)) return w.gemv_rows(x, n, ptr_or_null(bias), alpha, accumulate, out, stream_);
  gemm(x, n, w, tmp_.get());
  launch_bias_residual(tmp_.get(), ptr_or_null(bias), n, w.rows(), alpha, accumulate, out, stream_);
}

void GpuEngineImpl::add_to_hidden(const bf16* x, int64_t n, const LinearWeights& w, const Bf16Buffer& bias) {
  const float residual = float(config_.residual_multiplier);
  if (n == 1 && options_.norm_partials && hidden_sumsq_.get()) {
    hidden_parts_ = w.gemv(GemvInput{x}, ptr_or_null(bias), residual, true, hidden_.get(), stream_, false, hidden_sumsq_.get());
    return;
  }
  hidden_parts_ = 0;
  linear(x, n, w, bias, residual, true, hidden_.get());
}

GemvInput GpuEngineImpl::normed_hidden(const Bf16Buffer& norm) const {
  GemvInput in{nullptr, hidden_.get(), norm.get(), float(config_.rms_norm_eps)};
  if (hidden_parts_ > 0) in.sumsq = hidden_sumsq_.get(), in.sumsq_parts = hidden_parts_;
  return in;
}

void GpuEngineImpl::run_layers(const int32_t* d_tokens, int64_t n, int64_t slot, int64_t position) {
  const ModelConfig& c = config_;
  const int64_t d = c.hidden_size, hd = c.head_dim, ff = c.intermediate_size;
  const float eps = float(c.rms_norm_eps), residual = float(c.residual_multiplier);
  launch_embedding(embed_.get(), d_tokens, n, d, float(c.embedding_multiplier), hidden_.get(), stream_);
  hidden_parts_ = 0;
  bool qkv_done = false;  // the previous layer's GEMV chain computed this layer's qkv
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerBuffers& b = layers_[l];
    // Decode (n == 1) fuses each RMSNorm into the GEMV that reads it.
    const int64_t qkv_dim = c.q_dim() + 2 * c.kv_dim();
    if (b.mamba) {
      mamba_mixer(b, n);
    } else {  // attention
      const bool qkv_from_chain = qkv_done;
      qkv_done = false;
      QkvRopeParams r;
      r.q = qkv_.get(), r.k = qkv_.get() + c.q_dim(), r.v = qkv_.get() + c.q_dim() + c.kv_dim(), r.ld = qkv_dim;
      r.q_norm = ptr_or_null(b.q_norm), r.k_norm = ptr_or_null(b.k_norm), r.norm_eps = eps;
      r.inv_freq = inv_freq_.get();
      r.interleaved = c.rope.layout == RopeLayout::kInterleaved;
      r.pos0 = pos_.get();
      r.n = n, r.heads = c.num_heads, r.kv_heads = c.num_kv_heads, r.hd = hd;
      r.q_out = qb_.get();
      AttentionParams a;
      kv_->bind(b.kv_layer, slot, r, a);
      if (slot < 0) r.seq_lens = a.seq_lens = lens_.get();
      // Compressed: new entries go after the layer's kept ones, and attention counts keys from there.
      if (compressor_) r.cache0 = kv_len_dev_.get() + b.kv_layer;
      a.q = qb_.get(), a.pos0 = compressor_ ? r.cache0 : pos_.get();
      a.n = n, a.heads = c.num_heads, a.kv_heads = c.num_kv_heads, a.hd = hd;
      a.window = b.window, a.scale = float(c.softmax_scale());
      a.splits = slot < 0 ? default_batched_splits(options_.capacity, n, c.num_heads) : n == 1 ? int(decode_splits_) : 1;
      if (slot >= 0 && n == 1 && !options_.kv_quant.enabled()) a.min_chunk = options_.decode_min_chunk;
      a.partial = partial_.get(), a.counters = split_counters_.get(), a.out = attn_.get();
      a.vectorized = options_.vectorized_attention;
      a.prefetch = options_.attention_prefetch;
      a.flex = options_.flex_mask;
      a.score_mod = options_.score_mod;
      // One sequence's decode step (attention_rope_fusable): RoPE and the KV write inside the attention
      // launch, not with q/k norm, KIVI, a compressed cache or eager attention (which reads qb_).
      if (options_.fused_rope > 0 && !r.q_norm && !r.k_norm && !compressor_ && !eager_ && !options_.kv_quant.enabled() &&
          attention_rope_fusable(a) && (options_.fused_rope == 2 || !attention_on_tensor_cores(a)))
        a.rope.qkv = qkv_.get(), a.rope.inv_freq = r.inv_freq, a.rope.interleaved = r.interleaved;
      // attention_overlap: the GEMV writes into qkv_overlap_ and attention reads each row as it is
      // written (the new key in a chunk of its own).
      float* qkv_out = qkv_.get();
      if (options_.attention_overlap && a.rope.qkv && !qkv_from_chain) {
        qkv_out = qkv_overlap_.get();
        a.rope.qkv = qkv_out, a.rope.overlap = qkv_readers_.get(), a.splits += 1;
      }
      if (!qkv_from_chain) {
        if (n == 1) {
          b.wqkv.gemv(normed_hidden(b.attn_norm), ptr_or_null(b.bqkv), 1.f, false, qkv_out, stream_);
        } else {
          launch_rmsnorm(hidden_.get(), b.attn_norm.get(), n, d, eps, x_.get(), stream_);
          linear(x_.get(), n, b.wqkv, b.bqkv, 1.f, false, qkv_.get());
        }
        stage_done("norm + qkv");
      }
      if (!a.rope.qkv) {
        launch_qkv_rope(r, stream_);
        stage_done("q/k norm + rope + kv write");
      }
      if (eager_) {
        CTX_CHECK(position >= 0, "GPU engine: eager attention needs the host's position");
        eager_->run(a, position, stream_);
      } else if (n >= kFlashPrefillMinTokens && a.vectorized && options_.kv_quant.enabled() && slot >= 0 &&
                 options_.kivi_flash_prefill && kivi_flash_prefill(a, b.kv_layer, n, position, slot)) {
        // KIVI prompts: over the layer expanded to bf16 (above).
      } else if (n >= kFlashPrefillMinTokens && a.vectorized && flash_prefill_supported(a)) {
        // Prompts: tensor-core tiles (every query row would re-read all keys in the split-KV kernel),
        // contiguous or paged (one sequence: slot >= 0).
        launch_flash_prefill(a, stream_, flash_config_);
      } else {
        launch_attention(a, stream_);
      }
      // KvCache::flush: the groups this forward completes (compressed: counted in entries).
      if (options_.kv_quant.enabled()) {
        if (slot < 0) {
          kv_->quantize_batch(b.kv_layer, lens_.get(), n, stream_);
        } else {
          kv_->quantize(b.kv_layer, slot, compressor_ ? r.cache0 : pos_.get(), n, stream_);
        }
      }
      stage_done(a.rope.qkv ? "rope + kv write + attention" : "attention");
      // Attention-scored compression (snapkv, h2o, tova): the step's queries against the layer's entries.
      // With KIVI only in prefill steps (create() refuses policies that score decode steps), over
      // the layer expanded to bf16.
      if (compressor_ && compressor_->scorer() && !options_.kv_quant.enabled()) {
        const int64_t bound = n > 1 ? kv_len_[size_t(b.kv_layer)] + n : options_.capacity;  // decode: graph-safe
        compressor_->observe(b.kv_layer, kv_->rows(b.kv_layer, 0), qb_.get(), n, r.cache0, bound, stream_);
        stage_done("kv scores");
      } else if (compressor_ && compressor_->scorer() && n > 1) {
        const int64_t entries = kv_len_[size_t(b.kv_layer)] + n;
        const FullLayer full = expand_layer(b.kv_layer, entries);
        compressor_->observe(b.kv_layer, full.rows, qb_.get(), n, r.cache0, entries, stream_);
        stage_done("kv scores");
      }
      QuantGemvStage chain[kMaxGemvChain];
      if (const int stages = n == 1 ? gemv_chain(l, chain) : 0) {
        launch_quant_gemv_chain(chain, stages, chain_barrier_.get(), stream_);
        stage_done(stages == 4 ? "o_proj + norm + gate_up + down_proj + next norm + qkv (one chain)"
                               : "o_proj + norm + gate_up + down_proj (one chain)");
        qkv_done = stages == 4;
        hidden_parts_ = 0;
        continue;
      }
      add_to_hidden(attn_.get(), n, b.wo, b.bo);
      stage_done("o_proj + residual");
    }  // attention
    if (n == 1) {
      b.w_gate_up.gemv_swiglu(normed_hidden(b.ffn_norm), ptr_or_null(b.b_gate_up), act_.get(), stream_);
    } else {
      launch_rmsnorm(hidden_.get(), b.ffn_norm.get(), n, d, eps, x_.get(), stream_);
      if (b.w_gate_up.rows_supported(n)) {
        b.w_gate_up.gemv_swiglu_rows(x_.get(), n, ptr_or_null(b.b_gate_up), act_.get(), stream_);
      } else {
        gemm(x_.get(), n, b.w_gate_up, tmp_.get());
        launch_swiglu(tmp_.get(), ptr_or_null(b.b_gate_up), n, ff, act_.get(), stream_);
      }
    }
    stage_done("norm + gate_up + swiglu");
    add_to_hidden(act_.get(), n, b.w_down, b.b_down);
    stage_done("down_proj + residual");
  }
  // One row: the classifier's GEMV fuses the final RMSNorm (classify), as the layers' GEMVs fuse theirs.
  final_norm_fused_ = n == 1;
  if (!final_norm_fused_) launch_rmsnorm(hidden_.get(), final_norm_.get(), n, d, eps, x_.get(), stream_);
  stage_done("final norm");
}

int GpuEngineImpl::gemv_chain(size_t l, QuantGemvStage (&stages)[kMaxGemvChain]) const {
  const LayerBuffers& b = layers_[l];
  if (!options_.gemv_chain || b.mamba || !b.wo.quant_view() || !b.w_gate_up.quant_view() || !b.w_down.quant_view())
    return 0;
  const float eps = float(config_.rms_norm_eps), residual = float(config_.residual_multiplier);
  stages[0] = QuantGemvStage{*b.wo.quant_view(), GemvInput{attn_.get()}, ptr_or_null(b.bo), residual, true, hidden_.get()};
  stages[1] = QuantGemvStage{*b.w_gate_up.quant_view(), GemvInput{nullptr, hidden_.get(), b.ffn_norm.get(), eps},
                             ptr_or_null(b.b_gate_up), 1.f, false, nullptr, act_.get()};
  stages[2] = QuantGemvStage{*b.w_down.quant_view(), GemvInput{act_.get()}, ptr_or_null(b.b_down), residual, true,
                             hidden_.get()};
  if (l + 1 < layers_.size()) {
    const LayerBuffers& next = layers_[l + 1];
    if (!next.mamba && next.wqkv.quant_view()) {
      stages[3] = QuantGemvStage{*next.wqkv.quant_view(), GemvInput{nullptr, hidden_.get(), next.attn_norm.get(), eps},
                                 ptr_or_null(next.bqkv), 1.f, false, qkv_.get()};
      if (quant_gemv_chain_supported(stages, 4)) return 4;
    }
  }
  return quant_gemv_chain_supported(stages, 3) ? 3 : 0;
}

void GpuEngineImpl::mamba_mixer(const LayerBuffers& b, int64_t n) {
  const ModelConfig& c = config_;
  const int64_t d = c.hidden_size;
  const float eps = float(c.rms_norm_eps);
  float* proj = mamba_ws_.proj.get();
  if (n == 1) {
    b.w_in.gemv(normed_hidden(b.attn_norm), ptr_or_null(b.b_in), 1.f, false, proj, stream_);
  } else {
    launch_rmsnorm(hidden_.get(), b.attn_norm.get(), n, d, eps, x_.get(), stream_);
    linear(x_.get(), n, b.w_in, b.b_in, 1.f, false, proj);
  }
  stage_done("norm + in_proj");
  b.mamba->mix(mamba_ws_, n, mamba_state_.get() + b.state_offset, stream_);
  stage_done("conv + scan + gated norm");
  add_to_hidden(mamba_ws_.out.get(), n, b.w_out, b.b_out);
  stage_done("out_proj + residual");
}

void GpuEngineImpl::classify(int64_t from, int64_t n, float* out) {
  const ModelConfig& c = config_;
  const float alpha = float(1.0 / c.logits_scaling);
  if (final_norm_fused_) {
    CTX_CHECK(from == 0 && n == 1, "classify rows [", from, ", ", from + n, ") after a one-row forward");
    classifier_.gemv(normed_hidden(final_norm_), nullptr, alpha, false, out, stream_);
    return;
  }
  linear(x_.get() + from * c.hidden_size, n, classifier_, Bf16Buffer(), alpha, false, out);
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

void GpuEngineImpl::prefill(std::span<const int32_t> tokens, int64_t slot, int64_t length, float* last_logits,
                            float* all_logits_host, int64_t upcoming) {
  const int64_t vocab = config_.vocab_size;
  const int64_t chunk = std::min(options_.prefill_chunk, options_.capacity);
  for (size_t start = 0; start < tokens.size(); start += size_t(chunk)) {
    const int64_t n = std::min<int64_t>(chunk, int64_t(tokens.size() - start));
    // Room for this chunk only: a paged pool grows with the sequence, and with compression the blocks
    // the last step dropped are taken again, so the peak is the compressed cache plus one chunk.
    kv_->reserve(slot, (compressor_ ? kv_extent() : length + int64_t(start)) + n, stream_);
    CTX_CUDA_CHECK(cudaMemcpyAsync(tokens_.get(), tokens.data() + start, size_t(n) * 4, cudaMemcpyHostToDevice, stream_));
    set_position(length + int64_t(start));
    run_layers(tokens_.get(), n, slot, length + int64_t(start));
    if (all_logits_host) {
      if (n > logits_rows_) logits_ = DeviceBuffer<float>(alloc_, n * vocab), logits_rows_ = n;
      classify(0, n, logits_.get());
      CTX_CUDA_CHECK(cudaMemcpyAsync(all_logits_host + int64_t(start) * vocab, logits_.get(), size_t(n * vocab) * 4,
                                     cudaMemcpyDeviceToHost, stream_));
      CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    if (last_logits && start + size_t(n) == tokens.size()) classify(n - 1, 1, last_logits);
    // Mid-prompt the dropped blocks go back to the pool (the next chunk reserves its own room).
    const bool last = start + size_t(n) == tokens.size();
    if (compressor_) after_step(n, length + int64_t(start) + n, last ? upcoming : 0, false);
  }
}

int64_t GpuEngineImpl::kv_extent() const {
  return compressor_ && !kv_len_.empty() ? *std::max_element(kv_len_.begin(), kv_len_.end()) : length_;
}

void GpuEngineImpl::after_step(int64_t n_new, int64_t position, int64_t upcoming, bool device_advanced) {
  const GpuKvPolicy& policy = compressor_->policy();
  for (int64_t& len : kv_len_) len += n_new;
  // scored_compressor.cc: prefill steps always, decode steps every `every` (the count restarts either way).
  bool due = n_new > 1;
  if (!due) due = policy.budget.every > 0 && ++since_compress_ >= policy.budget.every;
  if (due) since_compress_ = 0;
  bool compressed = false;
  for (size_t l = 0; due && l < kv_len_.size(); ++l) {
    const int64_t count = policy.target(int64_t(l), kv_len_[l], position);
    if (count < 0) continue;
    // Enqueues only (no host sync): the device's entry count of the layer becomes `count` in stream order.
    if (options_.kv_quant.enabled())
      compress_kivi_layer(int64_t(l), count, position, n_new);
    else
      compressor_->compress(kv_->rows(int64_t(l), 0), int64_t(l), kv_len_[l], position, count, n_new,
                            kv_len_dev_.get() + l, stream_);
    kv_len_[l] = count;
    compressed = true;
  }
  if (!device_advanced) {  // a prefill step: the host's entry counts go to the device
    std::vector<int32_t> lens(kv_len_.begin(), kv_len_.end());
    CTX_CUDA_CHECK(cudaMemcpyAsync(kv_len_dev_.get(), lens.data(), lens.size() * 4, cudaMemcpyHostToDevice, stream_));
    CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));  // `lens` lives on this stack frame
  }
  if (compressed || !device_advanced) kv_->shrink(0, kv_extent() + upcoming);
  // KIVI: the codes follow the entries kept. Not after a decode step: the captured graph holds their
  // addresses (the codes then keep the size the decode reserved, enough for fewer entries).
  if (!device_advanced) kv_->fit_codes(kv_extent() + upcoming, stream_);
}

GpuEngineImpl::FullLayer GpuEngineImpl::expand_layer(int64_t layer, int64_t entries, int64_t quantized, int64_t slot) {
  const int64_t kvh = config_.num_kv_heads, hd = config_.head_dim;
  FullLayer f{DeviceBuffer<bf16>(alloc_, std::max<int64_t>(1, kvh * entries * hd)),
              DeviceBuffer<bf16>(alloc_, std::max<int64_t>(1, kvh * entries * hd)), {}};
  if (quantized < 0) quantized = options_.kv_quant.quantized_length(entries);
  kv_->expand(layer, quantized, entries, f.k.get(), f.v.get(), entries, stream_, slot);
  f.rows.k = f.k.get(), f.rows.v = f.v.get();
  f.rows.head_rows = entries, f.rows.kv_heads = kvh, f.rows.hd = hd;
  return f;
}

bool GpuEngineImpl::kivi_flash_prefill(AttentionParams a, int64_t layer, int64_t n, int64_t position, int64_t slot) {
  CTX_CHECK(position >= 0, "GPU engine: a KIVI prefill chunk needs the host's position");
  const int64_t before = compressor_ ? kv_len_[size_t(layer)] : position;  // entries before this forward
  a.kivi = KiviKv{};
  a.pool = PagedPool{};  // the copy is contiguous (the cache may be paged)
  a.capacity = before + n;  // the copy's rows per KV head
  if (!flash_prefill_supported(a)) return false;  // the ring's pointers stand in for the copy's (both aligned)
  const FullLayer full = expand_layer(layer, before + n, options_.kv_quant.quantized_length(before), slot);
  a.k_cache = full.k.get(), a.v_cache = full.v.get();
  launch_flash_prefill(a, stream_, flash_config_);
  return true;  // `full` goes back to the allocator's cache; work on stream_ orders any reuse after the kernel
}

void GpuEngineImpl::compress_kivi_layer(int64_t layer, int64_t count, int64_t position, int64_t n_new) {
  const int64_t entries = kv_len_[size_t(layer)];
  const FullLayer full = expand_layer(layer, entries);  // a transient of one layer's entries in bf16
  compressor_->compress(full.rows, layer, entries, position, count, n_new, kv_len_dev_.get() + layer, stream_);
  kv_->store(layer, options_.kv_quant.quantized_length(count), count, full.k.get(), full.v.get(), entries, stream_);
  // `full` goes back to the allocator's cache; work on stream_ orders any reuse after the store.
}

std::vector<std::vector<int64_t>> GpuEngineImpl::kv_positions(int64_t kv_layer) const {
  CTX_CHECK(kv_layer >= 0 && kv_layer < config_.num_kv_layers(), "KV layer ", kv_layer);
  if (compressor_) return compressor_->positions(kv_layer, kv_len_[size_t(kv_layer)], stream_);
  std::vector<std::vector<int64_t>> out(size_t(config_.num_kv_heads), std::vector<int64_t>(size_t(length_)));
  for (auto& head : out) std::iota(head.begin(), head.end(), int64_t(0));
  return out;
}

std::vector<float> GpuEngineImpl::forward(std::span<const int32_t> tokens, bool all_logits) {
  check_tokens(tokens);  // prefill() reserves the KV room chunk by chunk
  const int64_t vocab = config_.vocab_size;
  std::vector<float> logits(size_t(all_logits ? int64_t(tokens.size()) * vocab : vocab));
  prefill(tokens, 0, length_, all_logits ? nullptr : logits_.get(), all_logits ? logits.data() : nullptr);
  if (!all_logits)
    CTX_CUDA_CHECK(cudaMemcpyAsync(logits.data(), logits_.get(), size_t(vocab) * 4, cudaMemcpyDeviceToHost, stream_));
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  length_ += int64_t(tokens.size());
  return logits;
}

void GpuEngineImpl::decode_step() {
  run_layers(tokens_.get(), 1, 0, length_);  // length_: the position, read only without a graph (eager)
  classify(0, 1, step_logits_.get());
  stage_done("classifier");
  launch_argmax(step_logits_.get(), config_.vocab_size, tokens_.get(), out_.get(), step_.get(), stream_);
  launch_advance(pos_.get(), 1, step_.get(), stream_, compressor_ ? kv_len_dev_.get() : nullptr,
                 config_.num_kv_layers());
  stage_done("argmax + step");
}

std::vector<std::pair<std::string, double>> GpuEngineImpl::profile_decode_step() {
  if (length_ == 0 || length_ + 1 > options_.capacity)
    fail("GPU engine: profile_decode_step needs a prompt in the cache and room for one more token (", length_, " of ",
         options_.capacity, ")");
  kv_->reserve(0, kv_extent() + 1, stream_);
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
  if (compressor_) after_step(1, length_, 0, true);
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

void GpuEngineImpl::batch_decode_step(int64_t rows) {
  run_layers(tokens_.get(), rows, -1);
  classify(0, rows, step_logits_.get());
  launch_argmax_rows(step_logits_.get(), rows, config_.vocab_size, tokens_.get(), out_.get(), step_.get(), stream_);
  launch_advance_lengths(lens_.get(), rows, step_.get(), stream_);
}

GpuEngineImpl::DecodeGraph& GpuEngineImpl::decode_graph(int64_t rows) {
  DecodeGraph& g = graphs_[rows > 0 ? 1 : 0];
  if (g.exec && g.rows == rows && g.kv_version == kv_->version()) return g;
  if (g.exec) CTX_CUDA_CHECK(cudaGraphExecDestroy(g.exec));
  g = DecodeGraph{};
  cudaGraph_t graph = nullptr;
  CTX_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  rows == 0 ? decode_step() : batch_decode_step(rows);
  CTX_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  CTX_CUDA_CHECK(cudaGraphInstantiate(&g.exec, graph, 0));
  CTX_CUDA_CHECK(cudaGraphDestroy(graph));
  g.rows = rows, g.kv_version = kv_->version();
  return g;
}

int64_t GpuEngineImpl::decode_loop(int64_t steps, int64_t rows, int64_t max_new_tokens,
                                   const std::vector<int32_t>& stop_ids) {
  const int64_t seqs = rows == 0 ? 1 : rows;
  bool done = stopped(steps, seqs, stop_ids);
  while (!done && steps < max_new_tokens) {
    if (options_.use_graphs) {
      CTX_CUDA_CHECK(cudaGraphLaunch(decode_graph(rows).exec, stream_));
    } else {
      rows == 0 ? decode_step() : batch_decode_step(rows);
    }
    ++steps;
    if (rows == 0) {
      ++length_;
      if (compressor_) after_step(1, length_, max_new_tokens - steps, true);
    }
    if (steps % 8 == 0 || steps == max_new_tokens) done = stopped(steps, seqs, stop_ids);
  }
  return steps;
}

bool GpuEngineImpl::stopped(int64_t steps, int64_t rows, const std::vector<int32_t>& stop_ids) {
  if (stop_ids.empty()) return false;
  for (const auto& out : fetch_outputs(steps, rows, stop_ids))
    if (std::find(stop_ids.begin(), stop_ids.end(), out.back()) == stop_ids.end()) return false;
  return true;
}

void GpuEngineImpl::check_prompt(std::span<const int32_t> prompt, int64_t max_new_tokens, const std::string& which) const {
  if (prompt.empty()) fail("GPU engine: ", which, " is empty");
  if (int64_t(prompt.size()) + max_new_tokens - 1 > options_.capacity)
    fail("GPU engine: ", which, ": ", prompt.size(), " + ", max_new_tokens, " new tokens exceed the KV capacity ",
         options_.capacity);
  check_tokens(prompt);
}

std::vector<std::vector<int32_t>> GpuEngineImpl::fetch_outputs(int64_t steps, int64_t rows,
                                                               const std::vector<int32_t>& stop_ids) {
  std::vector<int32_t> all(static_cast<size_t>(steps * rows));
  CTX_CUDA_CHECK(cudaMemcpyAsync(all.data(), out_.get(), all.size() * 4, cudaMemcpyDeviceToHost, stream_));
  CTX_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < steps; ++i) {
      const int32_t t = all[size_t(i * rows + r)];
      out[size_t(r)].push_back(t);
      if (std::find(stop_ids.begin(), stop_ids.end(), t) != stop_ids.end()) break;
    }
  return out;
}

std::vector<int32_t> GpuEngineImpl::generate_greedy(std::span<const int32_t> prompt, int64_t max_new_tokens,
                                                    const std::vector<int32_t>& stop_ids, GpuTimings* timings) {
  reset();
  if (prompt.empty()) fail("GPU engine: the prompt is empty");
  if (max_new_tokens <= 0) return {};
  check_prompt(prompt, max_new_tokens, "the prompt");  // prefill() reserves the prompt's KV room chunk by chunk
  cudaEvent_t ev[3];
  for (auto& e : ev) CTX_CUDA_CHECK(cudaEventCreate(&e));
  CTX_CUDA_CHECK(cudaEventRecord(ev[0], stream_));
  // Prefill; the last chunk's last row picks the first token. pos_ is then the last chunk's start.
  prefill(prompt, 0, 0, step_logits_.get(), nullptr, max_new_tokens - 1);
  const int64_t chunk = std::min(options_.prefill_chunk, options_.capacity);
  const int64_t last_start = (int64_t(prompt.size()) - 1) / chunk * chunk;
  const int32_t zero = 0;
  CTX_CUDA_CHECK(cudaMemcpyAsync(step_.get(), &zero, 4, cudaMemcpyHostToDevice, stream_));
  launch_argmax(step_logits_.get(), config_.vocab_size, tokens_.get(), out_.get(), step_.get(), stream_);
  // pos = prompt length, step = 1
  launch_advance(pos_.get(), int32_t(int64_t(prompt.size()) - last_start), step_.get(), stream_);
  CTX_CUDA_CHECK(cudaEventRecord(ev[1], stream_));
  length_ = int64_t(prompt.size());
  kv_->reserve(0, kv_extent() + max_new_tokens - 1, stream_);  // the decode steps' room, before the graph

  const int64_t steps = decode_loop(1, 0, max_new_tokens, stop_ids);  // tokens produced
  CTX_CUDA_CHECK(cudaEventRecord(ev[2], stream_));
  auto out = fetch_outputs(steps, 1, stop_ids);
  finish_timings(ev, steps, timings);
  return std::move(out[0]);
}

std::vector<std::vector<int32_t>> GpuEngineImpl::generate_greedy_batch(const std::vector<std::vector<int32_t>>& prompts,
                                                                       int64_t max_new_tokens,
                                                                       const std::vector<int32_t>& stop_ids,
                                                                       GpuTimings* timings) {
  const int64_t rows = int64_t(prompts.size());
  if (compressor_) throw Unsupported("GPU engine: batched decode with KV compression is not implemented");
  if (rows < 1 || rows > options_.max_batch)
    fail("GPU engine: a batch of ", rows, " prompts; this engine decodes 1..", options_.max_batch, " (max_batch)");
  reset();
  if (max_new_tokens <= 0) return std::vector<std::vector<int32_t>>(size_t(rows));
  for (int64_t s = 0; s < rows; ++s) check_prompt(prompts[size_t(s)], max_new_tokens, str_cat("prompt ", s, " of the batch"));
  for (int64_t s = 0; s < rows; ++s) kv_->reserve(s, int64_t(prompts[size_t(s)].size()) + max_new_tokens - 1, stream_);
  cudaEvent_t ev[3];
  for (auto& e : ev) CTX_CUDA_CHECK(cudaEventCreate(&e));
  CTX_CUDA_CHECK(cudaEventRecord(ev[0], stream_));
  const int64_t vocab = config_.vocab_size;
  std::vector<int32_t> lengths(static_cast<size_t>(rows));
  for (int64_t s = 0; s < rows; ++s) {
    prefill(prompts[size_t(s)], s, 0, step_logits_.get() + s * vocab, nullptr);
    lengths[size_t(s)] = int32_t(prompts[size_t(s)].size());
  }
  // The first tokens (step 0), then lens = prompt + 1 (the first token's position is the prompt
  // length) and step = 1.
  const int32_t zero = 0;
  CTX_CUDA_CHECK(cudaMemcpyAsync(step_.get(), &zero, 4, cudaMemcpyHostToDevice, stream_));
  CTX_CUDA_CHECK(cudaMemcpyAsync(lens_.get(), lengths.data(), size_t(rows) * 4, cudaMemcpyHostToDevice, stream_));
  launch_argmax_rows(step_logits_.get(), rows, vocab, tokens_.get(), out_.get(), step_.get(), stream_);
  launch_advance_lengths(lens_.get(), rows, step_.get(), stream_);
  CTX_CUDA_CHECK(cudaEventRecord(ev[1], stream_));

  const int64_t steps = decode_loop(1, rows, max_new_tokens, stop_ids);
  CTX_CUDA_CHECK(cudaEventRecord(ev[2], stream_));
  auto out = fetch_outputs(steps, rows, stop_ids);
  finish_timings(ev, steps, timings);
  return out;
}

}  // namespace

std::unique_ptr<GpuEngine> GpuEngine::create(const Model& model, const GpuEngineOptions& options) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    throw Unsupported("GPU engine: no CUDA device is available");
  }
  if (options.kv.enabled()) {
    if (options.max_batch > 1)
      throw Unsupported("GPU engine: KV compression with max_batch > 1 (batched decode) is not implemented");
    if (options.kv_quant.enabled() && !options.kv.attention_rows(1).empty())
      throw Unsupported("GPU engine: KV compression that scores decode steps by attention (h2o, or snapkv/tova with "
                        "every > 0) with KIVI KV (kv_quant) is not implemented (the scores would need the dequantized "
                        "keys every step); prefill-scored policies and l2norm/streaming/random compose with KIVI");
    if (!options.flex_mask.empty())
      throw Unsupported("GPU engine: KV compression with a flex mask (its intervals are over positions, the compressed "
                        "cache's keys are not) is not implemented");
    for (int64_t w : model.config.layer_window)
      if (w > 0)
        throw Unsupported("GPU engine: KV compression refuses sliding-window layers (windows over entries would be "
                          "wrong once entries are dropped)");
  }
  if (!options.score_mod.empty() && (options.kv_block_size > 0 || options.kv_quant.enabled() || options.kv.enabled()))
    throw Unsupported("GPU engine: score mods (softcap, alibi) run over a contiguous bf16 KV cache without kv_quant "
                      "or KV compression (their positions are the cache's entries)");
  if (options.eager_attention &&
      (options.max_batch > 1 || options.kv_block_size > 0 || options.kv_quant.enabled() || options.kv.enabled()))
    throw Unsupported("GPU engine: eager attention runs one sequence (max_batch 1) over a contiguous bf16 KV cache, "
                      "without kv_quant or KV compression");
  if (model.config.num_mamba_layers() > 0 && options.max_batch > 1)
    throw Unsupported("GPU engine: batched decode of hybrid models (a Mamba-2 state per sequence) is not implemented; "
                      "max_batch must be 1");
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
