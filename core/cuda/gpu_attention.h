// The GPU engine's attention kernel (kernels.h: launch_attention, the one the forward pass uses) on
// host tensors, outside a model: for the conformance test against a float64 reference
// (tests/gpu/gpu_attention_test.cc) and for `ctxlab bench gpu-attention`.
//
// A case: a KV cache holding positions 0 .. length - 1 (k, v: [length, kv_heads * head_dim] float,
// rounded to bf16 on upload, laid out as the engine's cache [kv_heads][length][head_dim]) and
// `queries` query rows (q: [queries, heads * head_dim], rounded to bf16) at the last positions
// length - queries .. length - 1; query t sees keys <= its position, and with window > 0 only the
// last `window` of them. Head h reads KV head h / (heads / kv_heads). Output [queries, heads *
// head_dim]: the kernel's bf16 results as float. Throws ctx::Unsupported without CUDA or a GPU.
//
// Batched decode (batch_lengths not empty): sequence s holds batch_lengths[s] positions and has one
// query at its last position; k and v are the sequences' rows one after another ([sum of lengths,
// kv_heads * head_dim]), q and the output [batch, heads * head_dim]; `length` and `queries` are
// unused. Contiguous, every sequence gets a region of max(batch_lengths) positions (a static cache).
//
// Paged (block_size > 0, a power of two <= 1024): K and V live in a pool of blocks of block_size
// positions ([kv_heads][pool_blocks][block_size][head_dim], as the CPU BlockPool), each sequence's
// positions in ceil(length / block_size) blocks named by its row of a block table; the blocks are
// handed out in a shuffled order, so that the kernel must follow the table.
//
// kernel = kFlash / kFlashWgmma / kFlashTma runs the tensor-core prefill kernel (kernels/flash_attention.h)
// instead: head_dim 64 or 128, contiguous or paged, not batched (anything else is a clear error),
// any queries >= 1; kFlashWgmma and kFlashTma on a GPU other than compute capability 9.0 throw
// ctx::Unsupported (kFlashTma runs a score mod or paged K/V on the wgmma 64x4 kernel instead).
// kernel = kEager runs eager attention (gpu_eager_attention.h: scores materialised in float32 by
// cuBLAS, a softmax kernel, P.V by cuBLAS): any head_dim, contiguous, not batched, not KIVI.
// score_mod (not empty: softcap / ALiBi, core/cuda/score_mod.h) applies to every kernel's scores
// before the mask; the split-KV kernel takes it over a contiguous cache only (no block_size, no KIVI).
// KIVI (kivi.bits > 0; no window): after the upload, each sequence's positions below
// kivi.quantized_length(its first query's position) (those before the queries', as the CPU's
// KvCache holds them at the queries' attention) are quantized on the device from a bf16 copy of
// the whole cache, and the kernel's bf16 K/V are a ring of the newest residual + group + queries
// positions (the engine's layout: position p at row p % ring), so that it must read the older ones
// as codes (core/kv/kv_quant.h's scheme, launch_kivi_quantize), dequantized in registers
// (launch_kivi_attention); the rest it reads as bf16. With block_size the ring (rounded up to whole
// blocks) is paged instead, each sequence's ring rows in blocks of a pool in shuffled order (the
// engine's paged KIVI layout, gpu_kv_cache.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "core/cuda/flex_mask.h"
#include "core/cuda/score_mod.h"
#include "core/kv/kv_quant.h"

namespace ctx::cuda {

enum class AttentionKernel {
  kSplitKv,     // launch_attention: one block per (query, head[s], chunk of keys); any layout
  kFlash,       // launch_flash_prefill: FlashAttention-2 tiles on tensor cores (mma.sync)
  kFlashWgmma,  // the same on Hopper's wgmma (compute capability 9.0 only)
  kFlashTma,    // the TMA + warp-specialised wgmma kernel (FlashImpl::kWgmmaTma; compute capability 9.0 only)
  kEager,       // EagerAttention: materialised scores, cuBLAS GEMMs around a softmax kernel
};

struct GpuAttentionCase {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  int64_t length = 0;   // cached positions (the queries' own included)
  int64_t queries = 1;  // 1 = decode
  int64_t window = 0;   // > 0: sliding window
  float scale = 0;      // 0: 1 / sqrt(head_dim)
  int splits = 0;       // chunks of keys per query (split-KV); 0: the engine's choice (64 keys each
                        // for one query, 1 for several)
  int64_t min_chunk = 0;  // keys per chunk at least (AttentionParams::min_chunk)
  bool vectorized = true;  // false: the generic kernel even for head_dim 64/128/256
  int64_t block_size = 0;  // > 0: paged KV with blocks of this many positions
  int group_heads = 0;     // GQA: query heads sharing a KV head handled per block (1, 2, 4; 0: 4)
  int prefetch = 0;        // the wide kernel loads a warp's next keys first: 0, 1, -1 auto (kernels.h)
  int tensor_cores = -1;   // head_dim 64/128 on tensor cores: -1 auto (GQA, KIVI 4/8 bits), 0 never, 1 always (kernels.h)
  int kivi_stages = -1;    // KIVI 4 bits on tensor cores: 0 registers, 2/3 a cp.async ring, -1 auto (kernels.h)
  FlexMask flex;           // not empty: a flex mask (core/cuda/flex_mask.h) instead of plain causal; its
                           // rows may see any of the `length` cached keys (prefix_lm: later ones too)
  ScoreMod score_mod;      // not empty: this score mod on every score (before the mask)
  std::vector<int64_t> batch_lengths;  // not empty: batched decode of these sequences
  AttentionKernel kernel = AttentionKernel::kSplitKv;
  int flash_rows = 0, flash_warps = 0;  // kFlash*: block shape (kernels/flash_attention.h FlashConfig;
                                        // 0, 0: the default)
  bool flash_pingpong = true;           // kFlashTma: FlashConfig::pingpong
  KvQuantConfig kivi;                  // bits > 0: the quantized prefix read as KIVI codes (above)
  int64_t spare_capacity = 0;          // > 0 (one contiguous sequence, no KIVI): the cache holds this many
                                       // positions past `length`, filled with NaN, as an engine's cache
                                       // holds garbage past its last entry; no kernel may let it reach
                                       // the output
};

// The engine's split-KV chunk count for `length` keys and `queries` rows (what splits = 0 picks):
// chunks of about 64 keys (16 per warp) for one query, so that even one sequence at 1k context gives
// heads * splits blocks enough to fill the GPU, but no more than 64 chunks (past 4k keys the chunks
// grow: more chunks cost more in the combine than they add in parallelism; H100 sweep in
// bench/RESULTS.md); one chunk for several queries. tensor_core_gqa: the decode runs on the
// tensor-core GQA pass (head_dim 64/128, several query heads per KV head: kernels.h tensor_cores),
// whose blocks each read one KV head for 4 query heads with two steps of loads in flight: there
// no more than 32 chunks (GQA 32q/8kv at 32k on the H100: 0.850 of copy bandwidth with 32, 0.738
// with 64, 0.825 with 16).
inline int default_attention_splits(int64_t length, int64_t queries, bool tensor_core_gqa = false) {
  return queries == 1 ? int(std::clamp<int64_t>((length + 63) / 64, 1, tensor_core_gqa ? 32 : 64)) : 1;
}

// Whether decode of this shape takes the tensor-core GQA pass by default (kernels.h tensor_cores -1:
// 2 or 4 query heads per block, attention_pass.cuh grouped_heads; KIVI also needs groups of a
// multiple of 32 keys, not checked here).
inline bool uses_tensor_core_gqa(int64_t heads, int64_t kv_heads, int64_t head_dim) {
  return kv_heads > 0 && heads % kv_heads == 0 && (heads / kv_heads) % 2 == 0 && (head_dim == 64 || head_dim == 128);
}

// Batched decode's chunk count: the single-sequence choice for the longest sequence, but no more
// than keeps batch * heads * splits near 4096 blocks (a few waves), since many rows already fill
// the GPU.
inline int default_batched_splits(int64_t max_length, int64_t batch, int64_t heads) {
  const int64_t fill = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, batch * heads));
  return int(std::clamp<int64_t>(std::min<int64_t>(default_attention_splits(max_length, 1), fill), 1, 64));
}

std::vector<float> gpu_attention(const GpuAttentionCase& c, std::span<const float> q, std::span<const float> k,
                                 std::span<const float> v);

// The quantized prefix of a case's one sequence (c.kivi on, batch_lengths empty) as the device's
// quantize kernels write it, in the order of kv_quant.h's functions: per KV head h, the qlen =
// c.kivi.quantized_length(c.length - c.queries) rows of codes, per key group the head_dim params
// (quantize_key_block) and per row the value blocks' params (quantize_value_row).
struct KiviPrefix {
  int64_t qlen = 0, row_bytes = 0, value_blocks = 0;
  std::vector<uint8_t> k_codes, v_codes;  // [kv_heads][qlen][row_bytes]
  std::vector<KvQuantParam> k_params;     // [kv_heads][qlen / group][head_dim]
  std::vector<KvQuantParam> v_params;     // [kv_heads][qlen][value_blocks]
};
KiviPrefix gpu_kivi_quantize(const GpuAttentionCase& c, std::span<const float> k, std::span<const float> v);

struct AttentionTiming {
  int splits = 0;
  double us = 0;              // median microseconds per launch
  double bytes_per_s = 0;     // K and V bytes the launch must read / time
  int64_t kv_bytes = 0;       // K and V bytes the launch reads (KIVI: codes, params, bf16 rest)
  int64_t reserved_bytes = 0;  // K and V bytes the layout holds for them (static regions or blocks;
                               // KIVI: the bf16 cache and the codes and params buffers)
};
// Decode attention (queries = 1; batched when batch_lengths is set; paged when block_size > 0) on
// random bf16 data over enough copies of the cache to defeat the L2 cache: median of `reps` timings
// of 20 back-to-back launches.
AttentionTiming measure_decode_attention(const GpuAttentionCase& c, int reps);

// Floating-point operations of attention counted as FlashAttention's benchmarks do: 4 * heads *
// head_dim per (query, key) pair seen (a multiply and an add in Q.K^T and in P.V), the pairs
// n^2 / 2 for a causal prompt of n tokens (queries == length, no window), else counted exactly.
inline double prefill_attention_flops(const GpuAttentionCase& c) {
  double pairs = 0;
  if (c.window == 0 && c.queries == c.length) {
    pairs = double(c.length) * double(c.length) / 2;
  } else {
    for (int64_t t = 0; t < c.queries; ++t) {
      const int64_t pos = c.length - c.queries + t;
      pairs += double(c.window > 0 ? std::min(pos + 1, c.window) : pos + 1);
    }
  }
  return 4.0 * double(c.heads) * double(c.head_dim) * pairs;
}

struct PrefillTiming {
  double us = 0;       // median microseconds per launch
  double flops = 0;    // prefill_attention_flops
  double tflops = 0;   // flops / time / 1e12
  int64_t peak_bytes = 0;  // peak device bytes of the case's allocator: q, K, V, out and workspaces
                           // (kEager: its score matrix)
};
// Prefill attention (c.queries rows at the end of c.length positions, c.kernel; contiguous, or
// paged with c.block_size in shuffled pool order) on random bf16 data: median of `reps` timings of `launches` back-to-back launches (compute-bound: the cache
// is not cycled beyond L2).
PrefillTiming measure_prefill_attention(const GpuAttentionCase& c, int reps, int launches);

}  // namespace ctx::cuda
