// The CUDA forward pass: Llama-family and Granite-4.0-H hybrid models on one GPU, one sequence or a
// batch, in bf16 weights (or a quant plugin's packed ones) and activations with float32 accumulation
// and a float32 residual stream.
//
//   weights      uploaded once from a loaded Model (float32 on the host) as bf16, row-major like the
//                CPU engine ([out_features, in_features]); embedding, norms and biases too. Linear
//                layers that a quant plugin quantized on the host (quantize_model_weights, as for the
//                CPU engine: int8, llm_int8, q8_0, q4_0, nf4, fp4) stay in the plugin's packed bytes on
//                the device (linear_weights.h): decode runs a fused dequantize-GEMV, prefill dequantizes
//                bf16 tiles for cuBLAS; activations stay bf16, so the results are the dequantized
//                matrix's (q8_0/q4_0 do not quantize the activations as their CPU kernels do), except
//                llm_int8, whose input decomposition (int8 codes + outlier columns) runs on the device
//                as in its plugin
//   prefill      n tokens at once: cuBLAS bf16 GEMMs (float32 output), RMSNorm, RoPE (+ q/k norm) and
//                the KV write fused in one kernel, causal attention over the cache (sliding windows
//                included; tensor-core FlashAttention-2 tiles for >= 64 tokens at head_dim 64/128,
//                contiguous or paged KV, kernels/flash_attention.h), SwiGLU; chunked when the prompt
//                exceeds the prefill chunk
//   decode       one token: a bf16 GEMV kernel that streams the weights with 16-byte loads and fuses
//                bias and residual, split-KV attention (partial softmax per chunk of keys, then a
//                combine kernel), greedy argmax on the device; every step of generate_greedy is one
//                CUDA graph replay (token and position live in device memory)
//   KV cache     bf16, attention layers only, contiguous: [attention layer][sequence slot][kv_head]
//                [capacity][head_dim] for max_batch slots, fixed at creation; or paged (kv_block_size
//                > 0): per layer a pool [kv_head][pool_blocks][block_size][head_dim] whose blocks are
//                handed to sequences as they need them (a block table per slot, one for all layers);
//                the pool starts empty and grows on the device as the prefill reserves each chunk's
//                blocks (gpu_kv_cache.h), so KV memory follows the tokens held, not max_batch *
//                capacity; with KV compression its high-water mark is the compressed cache plus one
//                prefill chunk
//   batched      generate_greedy_batch: several prompts of different lengths prefilled one by one,
//                then decoded together (one row per sequence: cuBLAS GEMMs, per-row positions,
//                batched split-KV attention), each step one CUDA graph replay
//   hybrids      Granite-4.0-H Mamba-2 layers (gpu_mamba2.h): in_proj/out_proj through the same GEMM
//                and GEMV, conv + chunked SSD scan (prefill) or recurrent step (decode) kernels; their
//                float32 recurrent state lives in device memory, zeroed by reset(); one sequence
//                (max_batch 1)
//   attention    masks: causal, the model's sliding windows, or a flex mask (flex_mask.h: the `flex`
//                plugin's named masks and their and/or) with or without a score mod (score_mod.h:
//                softcap, ALiBi; in the split-KV, flash and eager kernels); KV variants
//                (GpuEngineOptions): KIVI-quantized KV (kv_quant) and KV compression (kv: l2norm,
//                streaming, random, snapkv, h2o, tova: the last three score in a hook after each
//                layer's attention), KIVI also batched, compression one sequence, and composed (KIVI codes rebuilt from the kept
//                entries after a compaction, as the CPU's KvCache::compact); eager attention (gpu_eager_attention.h: the
//                `eager` backend's materialised scores) instead of the fused kernels
// Model features: GQA, RoPE default/linear/llama3 in both layouts or none (NoPE), qkv/o/mlp biases,
// q/k norm, sliding windows, Granite multipliers, tied embeddings, dense Mamba-2 hybrids.
// Memory: every device byte comes from one caching allocator whose current/peak/reserved figures
// memory() reports; a failed allocation throws CudaOutOfMemory naming the bytes asked for and free.
// Without CUDA (a CPU-only build, or no GPU) create() throws ctx::Unsupported.
// Not thread-safe: one engine drives one stream.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/base/error.h"
#include "core/cuda/flex_mask.h"
#include "core/cuda/score_mod.h"
#include "core/kv/kv_quant.h"
#include "core/cuda/gpu_kv_policy.h"
#include "core/model/model_loader.h"

namespace ctx::cuda {

// A device allocation failed: status `oom` for the runner.
class CudaOutOfMemory : public Error {
 public:
  CudaOutOfMemory(const std::string& what, int64_t requested, int64_t free_bytes)
      : Error(what), requested_bytes(requested), free_bytes(free_bytes) {}
  int64_t requested_bytes, free_bytes;
};

struct DeviceMemoryStats {
  int64_t current_bytes = 0;   // in use by live buffers
  int64_t peak_bytes = 0;      // largest current_bytes so far
  int64_t reserved_bytes = 0;  // held from the driver (in use + cached for reuse)
  int64_t device_free_bytes = 0, device_total_bytes = 0;  // cudaMemGetInfo, the cross-check
};

struct GpuTimings {
  double prefill_ms = 0;  // prompt forward + first token (time to first token), CUDA events
  double decode_ms = 0;   // all later steps
  int64_t decode_steps = 0;
};

struct GpuEngineOptions {
  int64_t capacity = 4096;       // KV cache positions
  int64_t prefill_chunk = 2048;  // tokens per prefill forward (scratch is sized for this)
  bool use_graphs = true;        // decode steps as CUDA graph replays
  // Decode steps of one token (quantized weights of one format): each attention layer's o_proj,
  // RMSNorm + gate_up + SwiGLU, down_proj and the next layer's RMSNorm + qkv as one persistent kernel
  // (kernels/quant_kernels.h launch_quant_gemv_chain; the same outputs bit for bit) instead of four.
  // Off by default: on an H100 the chain decoded the 7B 7-18% slower than the four launches
  // (bench/RESULTS.md, fourteenth session).
  bool gemv_chain = false;
  int64_t memory_limit_bytes = 0;  // > 0: device memory beyond this is CudaOutOfMemory (a smaller card)
  bool vectorized_attention = true;  // false: the generic attention kernel for every head_dim (tests)
  int attention_prefetch = 0;    // decode attention's key prefetch (kernels.h AttentionParams::prefetch)
  // Decode attention of one sequence (bf16 KV): keys per split-KV chunk at least. The split count
  // follows the capacity (the graph is captured once), so without this a short context in a large
  // engine is cut into chunks of a few keys (the 7B's 32 heads at 256 keys on an H100: 18.3 us in 64
  // chunks, 8.4 us in 8; bench/RESULTS.md, fourteenth session). 0: no minimum.
  int64_t decode_min_chunk = 32;
  // Decode of one sequence: each attention layer's RoPE and KV write inside the attention launch
  // (kernels.h AttentionParams::rope; the same outputs bit for bit) instead of a launch of their own,
  // where the layer allows it (no q/k norm, KIVI, KV compression, eager attention or flex mask).
  // 0: never; 1: on the CUDA-core attention passes (one query head per block: MHA); 2 (the default):
  // on the tensor-core pass (GQA) too, whose K/V loads then go through L2. On an H100 the fused launch
  // decoded the Llama-2-7B shape (MHA) 1-2% faster, TinyLlama's GQA shape with q4_0 weights 2.4% faster
  // at 256 keys and as fast at 1024 (bench/RESULTS.md, fifteenth session).
  int fused_rope = 2;
  // Decode of one sequence with RoPE fused into attention (above), the layer's qkv from its own GEMV:
  // attention starts beside the GEMV, each block reading the rows it needs as the GEMV stores them
  // (kernels.h AttentionParams::Rope::overlap: unwritten elements hold a NaN pattern), the new key a
  // split-KV chunk of its own. The chunks then merge in another order, so logits may differ from the
  // default in the last bits. Off by default.
  bool attention_overlap = false;
  // Decode of one row: each quantized GEMV that adds to the hidden state (o_proj, down_proj) also
  // leaves the sums of squares of its output tiles, and the next GEMV's fused RMSNorm adds those up
  // instead of summing hidden itself, so that its lanes normalize their own pieces of hidden without
  // a block-wide sum and staging (kernels.h GemvInput::sumsq; the same sum in another order, so
  // logits may differ from norm_partials = false in the last bits). Off by default until measured:
  // written in the twenty-fifth session (bench/gpu/run_session25_norm_partials.sh).
  bool norm_partials = false;
  FlexMask flex_mask;            // not empty: every attention layer under this flex mask (flex_mask.h;
                                 // the model's sliding window is anded in), prefill and decode
  ScoreMod score_mod;            // not empty: every attention layer's scaled scores through this score
                                 // mod (score_mod.h: softcap, ALiBi) before the mask; contiguous KV
                                 // without kv_quant or kv compression (ctx::Unsupported otherwise)
  // The `eager` backend: every attention layer, prefill and decode, as gpu_eager_attention.h computes
  // it (scores of all heads materialised in float32 by cuBLAS, a softmax kernel, P.V by cuBLAS), so
  // that a prefill chunk's heads x chunk x keys score matrix comes from the allocator: it shows in
  // memory().peak_bytes and a failed allocation is CudaOutOfMemory. Decode steps are launched one by
  // one (use_graphs is ignored: the GEMM shapes follow the length, as in HF's eager generation). One
  // sequence (max_batch 1), contiguous KV, no kv_quant and no kv compression (ctx::Unsupported).
  bool eager_attention = false;
  int64_t eager_score_limit_bytes = 0;  // > 0: eager materialises whole KV-head groups in turn, as
                                        // many as keep the score matrix under this many bytes
  int64_t max_batch = 1;         // sequences generate_greedy_batch may decode together (<= prefill_chunk)
  int64_t kv_block_size = 0;     // > 0 (a power of two <= 1024): paged KV with blocks of this many positions
  int64_t kv_pool_positions = 0;  // paged: the most positions the pool may grow to (0: max_batch *
                                  // capacity); a sequence that finds no free block then is CudaOutOfMemory
  // bits > 0: KIVI-quantized KV (core/kv/kv_quant.h, the CPU's kv_quant): after each layer's
  // attention the groups the forward completed are quantized on the device from the bf16 rows (as
  // KvCache::flush), and attention reads the quantized prefix as codes (kernels/kivi_kernels.h).
  // No sliding windows (else Unsupported). The bf16 K/V then hold only the newest
  // residual + group + prefill_chunk positions of each slot (a ring; paged KV: rounded up to whole
  // blocks, the ring's rows in the pool's blocks, gpu_kv_cache.h); the codes and params grow with
  // the entries held (each prefill chunk and generate_greedy reserve theirs; batches: every slot
  // holds the longest sequence's) and shrink to them after compression and reset()
  // (gpu_kv_cache.h), so kv_cache_bytes() and the allocator's peak follow the entries, not the
  // capacity. generate_greedy_batch quantizes each sequence's groups as its own decode completes
  // them, as the sequence alone would. As on the CPU, how a prompt is cut into forwards (prefill_chunk)
  // decides what each chunk sees quantized.
  // With KV compression (kv below) it is the CPU's semantics (KvCache::compact): per layer and step
  // the completed groups are quantized first (in entries, not positions), then a compaction rebuilds
  // the layer: it is expanded to bf16 (the codes dequantized, the ring's rows; a transient of one
  // layer's entries), the compressor scores and compacts that, the kept entries' quantized prefix
  // quantized_length(count) is re-quantized in fresh groups and the rest written to the ring.
  // snapkv/tova score prefill steps over the expanded layer; policies that score decode steps by
  // attention (h2o, or snapkv/tova with every > 0) are Unsupported with KIVI.
  KvQuantConfig kv_quant;
  // KIVI prompt chunks of >= 64 tokens (head_dim 64/128): attention over the layer expanded to bf16
  // (the quantized prefix dequantized, then rounded to bf16; the ring's rows; the chunk's own) by the
  // flash prefill kernels, a transient of one layer's entries in bf16 (K and V: 4 * kv_heads *
  // head_dim bytes per entry) on top of the cache; false: the split-KV kernel reads the codes in place
  // (no transient, but every query row re-reads every key: about 9x the 7B's TTFT at 8k).
  bool kivi_flash_prefill = true;
  // KV compression (gpu_kv_policy.h; none by default): after each prefill step (chunk) and every
  // `every` decode steps, per attention layer, the kept entries move to the front and the layer's
  // entry count drops (paged: the blocks past the longest layer return to the pool; KIVI: see
  // kv_quant above). Entries are then
  // no longer positions: RoPE uses the position, the KV write and attention the entry count. Needs
  // max_batch 1, no sliding-window layers and no flex_mask (ctx::Unsupported otherwise).
  GpuKvPolicy kv;
};

class GpuEngine {
 public:
  // Uploads `model` (its weights as given, quantized or not). Throws ctx::Unsupported (no CUDA, no GPU,
  // a feature or a quantization format this engine lacks) or CudaOutOfMemory.
  static std::unique_ptr<GpuEngine> create(const Model& model, const GpuEngineOptions& options);
  virtual ~GpuEngine() = default;

  virtual void reset() = 0;              // empties the KV cache and zeroes the recurrent state
  virtual int64_t length() const = 0;    // tokens seen (the next token's position)
  // KV compression: the positions of the entries KV layer `kv_layer` holds, per KV head
  // ([kv_head][entries], increasing); without compression every head holds 0..length()-1.
  virtual std::vector<std::vector<int64_t>> kv_positions(int64_t kv_layer) const = 0;
  virtual int64_t capacity() const = 0;

  // Runs `tokens` at positions length().. (teacher forcing) and returns float32 logits: every
  // token's ([n, vocab]) when all_logits, else the last token's ([vocab]).
  virtual std::vector<float> forward(std::span<const int32_t> tokens, bool all_logits) = 0;

  // Greedy continuation after `prompt` (the cache is reset first): argmax on the device, lowest id on
  // ties; a token in `stop_ids` ends it (and is included).
  virtual std::vector<int32_t> generate_greedy(std::span<const int32_t> prompt, int64_t max_new_tokens,
                                               const std::vector<int32_t>& stop_ids, GpuTimings* timings) = 0;

  // Greedy continuations of several prompts decoded together (1 <= prompts.size() <= max_batch; the
  // cache is reset first): the same tokens as generate_greedy on each prompt alone up to float
  // rounding (batched projections are GEMMs, not GEMVs). Each sequence stops at its first stop id
  // (included); decoding goes on while any has not stopped. timings: prefill of all prompts and
  // decode of all steps (decode_steps counts steps, each producing one token per sequence).
  virtual std::vector<std::vector<int32_t>> generate_greedy_batch(const std::vector<std::vector<int32_t>>& prompts,
                                                                  int64_t max_new_tokens,
                                                                  const std::vector<int32_t>& stop_ids,
                                                                  GpuTimings* timings) = 0;

  virtual DeviceMemoryStats memory() const = 0;
  virtual void reset_peak_memory() = 0;      // memory().peak_bytes = current_bytes
  // Bytes of the K and V cache held (all slots, or the pool as grown so far) plus the Mamba-2 layers'
  // recurrent state.
  virtual int64_t kv_cache_bytes() const = 0;
  virtual int64_t kv_cache_bytes_in_use() const = 0;  // the same with paged KV: of the blocks sequences hold
  virtual int64_t weight_bytes() const = 0;  // device bytes of all weights (bf16, or packed when quantized)
  // Bytes one decode step at context `length` must read: every weight once (the embedding one row;
  // a tied classifier once) plus the K and V of `length` positions in every attention layer (KIVI:
  // codes and params of the quantized prefix, bf16 rows of the rest) and the recurrent state (read
  // and written).
  virtual int64_t bytes_read_per_token(int64_t length) const = 0;
  virtual std::string device_name() const = 0;

  // Where one decode step's time goes: the step after the cached tokens (which it appends), its
  // kernels launched one by one with a CUDA event after each stage (norm + qkv, attention, ...), as
  // (stage, milliseconds summed over the layers) in order. Without the graph and without overlap
  // between stages the total exceeds a replayed step; for finding the slow stage, not for timing.
  virtual std::vector<std::pair<std::string, double>> profile_decode_step() = 0;
  // GpuEngineOptions::gemv_chain from now on (the decode graphs are captured again), for comparisons
  // on one engine.
  virtual void set_gemv_chain(bool on) = 0;
  // GpuEngineOptions::fused_rope (0, 1 or 2) from now on (the decode graphs are captured again).
  virtual void set_fused_rope(int mode) = 0;
  // GpuEngineOptions::decode_min_chunk (>= 0) from now on (the decode graphs are captured again).
  virtual void set_decode_min_chunk(int64_t keys) = 0;
  // GpuEngineOptions::attention_prefetch (0, 1 or -1) from now on (the decode graphs are captured again).
  virtual void set_attention_prefetch(int mode) = 0;
  // GpuEngineOptions::attention_overlap from now on (the decode graphs are captured again).
  virtual void set_attention_overlap(bool on) = 0;
  // GpuEngineOptions::norm_partials from now on (the decode graphs are captured again).
  virtual void set_norm_partials(bool on) = 0;
};

// Device-to-device copy bandwidth in bytes per second (bytes read + bytes written over the median
// time of `reps` copies of `bytes`), the roofline's bandwidth. Throws ctx::Unsupported without CUDA.
double measure_copy_bandwidth(int64_t bytes, int reps);

// Read bandwidth of the decode GEMV kernel alone on random bf16 [rows, cols] matrices (bytes of the
// matrix and the vector per second): median over `reps` timings of 20 back-to-back launches that
// cycle through enough matrices to defeat the L2 cache. Throws ctx::Unsupported without CUDA.
double measure_gemv_bandwidth(int64_t rows, int64_t cols, int reps);

}  // namespace ctx::cuda
