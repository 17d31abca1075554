// The forward pass of the Llama-family decoder on CPU (float32, Eigen + OpenMP).
//
// A batch is a set of sequences of different lengths, each with its own KvCache and a run of new
// tokens (a prompt for prefill, one token for decode, or anything in between). All new tokens of
// the batch go through the linear layers together as one [N, hidden] matrix (no padding); attention
// runs per sequence against that sequence's cache. Logits are returned only for the rows asked for.
//
// Layers are attention layers or, in hybrid models (Granite-4.0-H), Mamba-2 layers
// (core/model/mamba2_layer.h) whose per-sequence recurrent state lives in the sequence's KvCache;
// the KV cache, KV compression, KV quantization and paging concern the attention layers only.
// Attention is a plugin (core/attention/attention_backend.h); the caches follow its layout.
// An optional KV compressor (core/kv/kv_compressor.h) runs on each layer after its attention.
// Optional KV quantization (core/kv/kv_quant.h): after each layer's attention the cache flushes the
// layer's old entries into its quantized store; before attention a layer holding quantized entries
// is dequantized into a per-sequence scratch (one layer at a time, reused by the next layer and
// step like the other scratch buffers; not counted as KV memory: 2 * kv_heads * length * head_dim floats) and the backend sees a normal contiguous view. So a step's attention sees its own new
// rows, and the residual window, in float (a prefill's attention is exact).
// Not thread-safe: one Transformer runs one batch at a time (it reuses scratch buffers); the Model
// it reads may be shared by several Transformers.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/attention/attention_backend.h"
#include "core/kv/kv_compressor.h"
#include "core/model/kv_cache.h"
#include "core/model/mamba2_layer.h"
#include "core/model/model_loader.h"
#include "core/model/rope.h"

namespace ctx {

struct SequenceStep {
  KvCache* cache = nullptr;            // advanced by tokens.size()
  std::span<const int32_t> tokens;     // new tokens, at RoPE positions from cache->position() on
  int64_t logits_from = -1;            // logits for tokens[logits_from..]; -1 = last token only
};

class Transformer {
 public:
  // Throws ctx::Unsupported (with the backend's reason) when `attention` cannot run some layer.
  Transformer(const Model& model, std::shared_ptr<const AttentionBackend> attention);

  // Runs `steps`, appends their keys/values to the caches and returns logits, one row of
  // vocab_size floats per requested token, rows in step order. Throws ctx::Error for token ids
  // outside the vocabulary (leaving the caches unchanged).
  std::vector<float> forward(std::span<const SequenceStep> steps);

  // Compresses every sequence's KV cache with `compressor` from the next forward() on (nullptr:
  // none). Throws ctx::Unsupported with the compressor's reason when it cannot serve this model.
  void set_kv_compressor(std::shared_ptr<const KvCompressor> compressor);
  const KvCompressor* kv_compressor() const { return compressor_.get(); }

  // Quantizes the caches made by new_cache() from then on (config.enabled() false: off), contiguous
  // or paged (a paged cache's blocks under every layer's quantized prefix go back to the pool; the
  // paged backend reads a quantized layer as its dequantized copy, KvCache::view(layer, scratch)).
  // Composes with any compressor: per layer and step the cache is flushed first, then the
  // compressor sees every entry as float (the quantized prefix dequantized) and a compaction rebuilds
  // the quantized prefix from the kept entries (KvCache::compact states the semantics and its error).
  void set_kv_quantization(const KvQuantConfig& config);
  const KvQuantConfig& kv_quantization() const { return quant_; }

  // A cache for this model in the attention backend's layout (paged caches share this
  // Transformer's block pool, which must outlive them).
  KvCache new_cache(int64_t capacity = 0) const;
  const BlockPool* block_pool() const { return pool_.get(); }

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config; }

 private:
  AttentionParams attention_params(int64_t layer) const;
  void attention_layer(int64_t layer, std::span<const SequenceStep> steps, const std::vector<int64_t>& row_begin,
                       const std::vector<int64_t>& pos, std::vector<char>& compressed);
  void mamba_layer(int64_t layer, std::span<const SequenceStep> steps, const std::vector<int64_t>& row_begin);

  const Model& model_;
  std::shared_ptr<const AttentionBackend> attention_;
  std::shared_ptr<const KvCompressor> compressor_;
  KvQuantConfig quant_;
  std::shared_ptr<BlockPool> pool_;  // paged layout only
  Rope rope_;
  std::unique_ptr<Mamba2Mixer> mamba_;  // hybrid models only
  // Scratch, grown on demand: activations for N rows.
  std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, mix_;
  std::vector<AttentionSequence> seqs_;
  std::vector<Mamba2Sequence> mamba_seqs_;
  std::vector<std::vector<float>> kv_scratch_;  // per sequence of a batch: dequantized K/V of one layer
};

}  // namespace ctx
