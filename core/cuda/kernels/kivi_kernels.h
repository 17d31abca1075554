// KIVI-quantized KV cache kernels (internal to core/cuda): quantization of the bf16 cache's rows
// into KiviKv (kernels.h: layout) exactly as core/kv/kv_quant.cc does in float32 on the same bf16
// values, and decode attention over the quantized prefix and the bf16 rest in one launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda/kernels/kernels.h"
#include "core/cuda/kernels/kv_rows.cuh"

namespace ctx::cuda {

// bf16 rows per (sequence, KV head): the ring, or the capacity.
__host__ __device__ inline int64_t kivi_bf16_rows(const KiviKv& kv, int64_t capacity) {
  return kv.ring > 0 ? kv.ring : capacity;
}

// Where a KIVI layer's bf16 rows live (the engine's GpuKvCache): per (sequence, KV head) `rows` rows
// (the ring, or the capacity), entry j at row j % rows; contiguous [seqs][kv_heads][rows][hd], or
// paged (pool.table set): row r in the layer's pool (kv_rows.cuh PagedPool; the ring's rows then take
// pool blocks instead of positions).
struct KiviBf16Rows {
  int64_t rows = 0, kv_heads = 0, hd = 0;
  PagedPool pool;
  // Element offset of entry j of (sequence seq, KV head h) from the layer's K (or V) base.
  __device__ int64_t offset(int64_t seq, int64_t h, int64_t j) const {
    const int64_t r = j % rows;
    if (!pool.paged()) return ((seq * kv_heads + h) * rows + r) * hd;
    return pool.offset(seq, h, r, hd);
  }
};

// Code rows per (sequence, KV head): code_rows, or the capacity.
__host__ __device__ inline int64_t kivi_code_rows(const KiviKv& kv, int64_t capacity) {
  return kv.code_rows > 0 ? kv.code_rows : capacity;
}

// kv_quant.h's KvQuantConfig::quantized_length: of T entries, the prefix held quantized.
__host__ __device__ inline int64_t kivi_quantized_length(const KiviKv& kv, int64_t T) {
  return T > kv.residual ? (T - kv.residual) / kv.group * kv.group : 0;
}

// Bytes of `entries` entries of one KV head whose first `quantized` (whole groups) are KIVI codes
// and fp16 (min, scale) params of K and V (bits 0: none) and the rest bf16 K and V rows: what a decode
// attention launch reads.
inline int64_t kivi_head_bytes(int bits, int64_t group, int64_t head_dim, int64_t entries, int64_t quantized) {
  if (bits == 0) return 2 * entries * head_dim * 2;
  const int64_t codes = 2 * quantized * ((head_dim * bits + 7) / 8);
  const int64_t params = int64_t(sizeof(KiviParam)) * (quantized / group * head_dim + quantized * ((head_dim + group - 1) / group));
  return codes + params + 2 * (entries - quantized) * head_dim * 2;
}

struct KiviQuantizeParams {
  const bf16 *k_cache, *v_cache;  // [seqs][kv_heads][capacity or kv.ring][hd] (kernels.h: KiviKv)
  KiviKv kv;                      // written: codes and params of the groups below
  int64_t kv_heads = 0, hd = 0, capacity = 0;
  int64_t seq = 0;                // the sequence whose groups are quantized
  int64_t group_begin = 0, group_end = 0;  // key groups [begin, end): positions begin * group .. end * group - 1
  // Set: the groups are instead those a forward of `count` tokens at position *pos0 (device
  // memory, so that a CUDA graph replays it at the next position) completes, [qlen(*pos0) / group,
  // qlen(*pos0 + count) / group), qlen(T) = kv_quant.h's quantized_length(T): KvCache::flush.
  const int32_t* pos0 = nullptr;
  int64_t count = 0;
  // Set (batched decode, instead of pos0 and seq): sequences 0 .. seqs - 1, each after a forward of
  // `count` tokens that ends at seq_lens[s] (device memory): groups [qlen(seq_lens[s] - count) / group,
  // qlen(seq_lens[s]) / group) of sequence s (kernels.h: AttentionParams::seq_lens).
  const int32_t* seq_lens = nullptr;
  int64_t seqs = 0;
  // > 0: k_cache/v_cache are instead a full copy [kv_heads][src_rows][hd] of one sequence's layer,
  // entry j at row j (KiviLayerCopy's k_full/v_full; seq 0).
  int64_t src_rows = 0;
  // Paged (src_rows 0): the bf16 rows in this pool (KiviBf16Rows).
  PagedPool pool;
};
// Quantizes positions group_begin * group .. group_end * group - 1 of sequence `seq`, every KV head:
// per key group and channel (min, scale) and codes; per token and channel block of values the same
// (quantize_key_block and quantize_value_row of kv_quant.h, bit for bit). The groups must lie within
// the capacity. Does nothing for an empty range.
void launch_kivi_quantize(const KiviQuantizeParams& p, cudaStream_t stream);

// One sequence's KIVI layer as full bf16 rows, for KV compression (the GPU engine's rebuild of a
// compacted layer, the semantics of core/model/kv_cache.h's KvCache::compact):
//   expand       k_full/v_full [kv_heads][full_rows][hd] = entries j < quantized dequantized from the
//                codes (min + code * scale in float32, as kv_quant.cc, then rounded to bf16), entries
//                quantized <= j < length copied from the bf16 cache (ring row j % ring)
//   store_float  the bf16 cache's rows of entries quantized <= j < length = k_full/v_full's
// (the codes of entries < quantized are written from k_full by launch_kivi_quantize with src_rows =
// full_rows). quantized is a multiple of group within the code rows, and length - quantized fits the
// ring; else CTX_CHECK. Enqueue only.
struct KiviLayerCopy {
  bf16 *k_cache = nullptr, *v_cache = nullptr;  // the sequence's [kv_heads][ring or capacity][hd]
  KiviKv kv;
  int64_t kv_heads = 0, hd = 0, capacity = 0;
  // Paged (pool.table set): k_cache/v_cache are the pool, sequence 0 of pool.table the layer's (KiviBf16Rows).
  PagedPool pool;
  bf16 *k_full = nullptr, *v_full = nullptr;    // [kv_heads][full_rows][hd]
  int64_t quantized = 0, length = 0;
  int64_t full_rows = 0;                        // rows per KV head of k_full/v_full (>= length; 0: length)
};
void launch_kivi_expand(const KiviLayerCopy& p, cudaStream_t stream);
void launch_kivi_store_float(const KiviLayerCopy& p, cudaStream_t stream);

// launch_attention (kernels.h) with p.kivi.bits != 0. Keys j < qlen(pos0) come from the codes,
// pos0 the position of the launch's first query (batched decode: of each sequence's one query):
// the entries before this forward's, as the CPU engine holds them at its attention (KvCache::flush
// runs after each layer's attention, so the forward's own entries, written in bf16, are quantized
// after it, in whole groups). They are dequantized in registers: per key group the query is folded into
// the params (q_d * scale_d, and sum_d q_d * min_d once), so the dot product runs on the codes;
// per value block the weights are summed as w * scale and w * min. Keys >= qlen come from the bf16
// cache, in the same online softmax and split-KV combine as the bf16 kernel
// (attention_pass.cuh). head_dim 64/128 with 4 or 8 bits and group a multiple of 32 take the
// tensor-core path with several query heads per block (GQA; p.tensor_cores -1, or 1 for any;
// attention_mma.cuh): S and P.V as mma.sync tiles on the codes as fp16 integers, one load of each
// K/V byte for all the query heads of a block. Else
// head_dim 64/128/256 with 4 or 8 bits and group a multiple of the warp's tile (kivi_tile: 16 keys
// for 64/128, 8 for 256; 4-head GQA blocks: 16, 8, 4; and of 8) take the CUDA-core wide path
// (16-byte-row layout of the bf16 kernel, 4- or 8-byte code loads per lane); anything else (2 bits,
// other head dims or groups) a generic one. Several queries of one sequence (a
// prefill chunk) are causal as in the bf16 kernel. The bf16 rows may be paged (p.pool: the
// ring's rows, or the capacity's, in pool blocks; KiviBf16Rows). Errors (CTX_CHECK): bits not 2/4/8,
// group < 1, a window.
// At 4 bits the tensor-core path copies each warp's tiles of codes and params by cp.async into a
// ring in shared memory (p.kivi_stages: 2 or 3 tiles; by default at head_dim 128, with 16-byte aligned
// buffers, where it is also taken for one query head per block), and by default (kivi_stages -1)
// one sequence's decode then uses no more chunks than one wave of blocks holds:
// kivi_attention_splits(p) <= p.splits chunks (p.partial and p.counters sized for p.splits serve).
void launch_kivi_attention(const AttentionParams& p, cudaStream_t stream);

// The split count launch_kivi_attention(p) runs with (p.splits, or fewer: above).
int kivi_attention_splits(const AttentionParams& p);

// Keys per warp step of the CUDA-core wide path for head_dim hd and g query heads per block: the tile
// boundaries chunks and warps are aligned to; a key group must be a multiple of it (and of 8).
__host__ __device__ constexpr int kivi_loads(int hd, int g) { return hd == 64 || g == 4 ? 4 : 8; }
__host__ __device__ constexpr int kivi_tile(int hd, int g) { return (32 / (hd / 8)) * kivi_loads(hd, g); }

}  // namespace ctx::cuda
